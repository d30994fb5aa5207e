/* The raw SQLite insert ceiling that `make bench` compares `unclog import` against:
 * N rows of 8 integer columns, C API, one transaction, journal off, one prepared statement
 * inserting 64 rows per step, no index. Prints rows per second. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s DB ROWS\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    long rows = atol(argv[2]);
    unlink(path);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "open failed\n");
        return 1;
    }
    sqlite3_exec(db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA locking_mode=EXCLUSIVE;", 0, 0, 0);
    sqlite3_exec(db,
                 "CREATE TABLE events (id INTEGER PRIMARY KEY, trace_id INTEGER, ts_ns INTEGER, kind INTEGER,"
                 " thread_id INTEGER, gt_id INTEGER, arg1 INTEGER, arg2 INTEGER)",
                 0, 0, 0);
    char sql[16384];
    int n = snprintf(sql, sizeof sql, "INSERT INTO events VALUES ");
    for (int r = 0; r < 64; r++) n += snprintf(sql + n, sizeof sql - n, "%s(?,?,?,?,?,?,?,?)", r ? "," : "");
    double t0 = now();
    sqlite3_exec(db, "BEGIN", 0, 0, 0);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, 0) != SQLITE_OK) {
        fprintf(stderr, "%s\n", sqlite3_errmsg(db));
        return 1;
    }
    unsigned long long x = 88172645463325252ULL;
    long ts = 0;
    for (long i = 0; i < rows; i += 64) {
        for (int r = 0; r < 64; r++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            long id = i + r + 1;
            ts += 1000 + (long)(x % 20000);
            int b = r * 8;
            sqlite3_bind_int64(st, b + 1, id);
            sqlite3_bind_int64(st, b + 2, 1);
            sqlite3_bind_int64(st, b + 3, ts);
            sqlite3_bind_int64(st, b + 4, (long)(x % 8));
            sqlite3_bind_int64(st, b + 5, 12345);
            sqlite3_bind_int64(st, b + 6, (long)(x % 1000) + 1);
            sqlite3_bind_int64(st, b + 7, (long)(x % 100000));
            sqlite3_bind_int64(st, b + 8, (long)((x >> 20) % 100000));
        }
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "%s\n", sqlite3_errmsg(db));
            return 1;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_exec(db, "COMMIT", 0, 0, 0);
    double dt = now() - t0;
    sqlite3_close(db);
    printf("%.0f\n", rows / dt);
    return 0;
}
