// The system SQLite (Debian's libsqlite3-dev), imported into Swift as a system library.
#include <sqlite3.h>
