// `unclog sql`: any read-only SQL over the store (schema/schema.sql documents the tables).

import ArgumentParser
import UnclogQuery
import UnclogStore

struct SQLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql",
        abstract: "Run one read-only SQL statement over the database.",
        discussion: """
            The connection is read-only: statements that would change the database are refused. \
            Tables and views are documented in schema/schema.sql, e.g.
              unclog sql app.db "SELECT function, line, total_ns FROM top_sites"
            """
    )

    @Argument(help: "The database written by `unclog import`.")
    var database: String

    @Argument(help: "One SQL statement.")
    var query: String

    @OptionGroup var output: FormatOptions

    func run() throws {
        let store = try openStore(database)
        let table = try storeCall { () throws(StoreError) in try store.query(query) }
        print(table.render(output.format, maxWidth: 200), terminator: "")
    }
}
