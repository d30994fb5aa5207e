// Tests of `unclog report`: the page's contents for a trace whose stalls, stacks and victims
// are known; that it is self-contained (no network references); and that it renders in
// headless Chromium (Debian's `chromium`, installed by `make deps-visualization`) with its
// script run to the end and no script error, producing a screenshot.

import Foundation
import Testing
import UnclogImport
import UnclogQuery
import UnclogStore
import UnclogTestSupport

@testable import UnclogReport

/// Headless Chromium, or nil when it is not installed.
let chromiumPath: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }

/// Renders `page` in headless Chromium: the DOM after scripts ran, console/script errors from
/// Chromium's log, and a screenshot written to `png`.
func renderInChromium(_ page: String, screenshot png: String) throws -> (dom: String, errors: [String], log: String) {
    let chromium = try #require(
        chromiumPath, "headless Chromium is missing: run `make deps-visualization` (apt-get install chromium)")
    let profile = TempDir()
    let common = [
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
        "--user-data-dir=\(profile.path)", "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=3000", "--hide-scrollbars",
    ]
    let url = URL(fileURLWithPath: page).absoluteString
    let dom = try runProgram(chromium, common + ["--dump-dom", url], timeout: 90)
    let shot = try runProgram(chromium, common + ["--window-size=1200,1800", "--screenshot=\(png)", url], timeout: 90)
    let log = dom.stderr + shot.stderr
    // Chromium logs page console messages and uncaught exceptions as `CONSOLE(…)` / "Uncaught …".
    let errors = log.split(separator: "\n").map(String.init).filter {
        $0.contains("Uncaught") || ($0.contains(":CONSOLE") && ($0.contains("ERROR") || $0.contains("Error")))
    }
    return (dom.stdout, errors, log)
}

@Suite(.serialized) struct ReportTests {
    func report(
        _ scenario: Scenario = Scenario(), options: ReportOptions = ReportOptions()
    ) throws -> (html: String, path: String, dir: TempDir) {
        let dir = TempDir()
        let db = try scenario.imported(in: dir)
        let out = dir.file("report.html")
        _ = try HTMLReport.write(try TraceStore(path: db), to: try ByteWriter(path: out), options: options)
        return (try String(contentsOfFile: out, encoding: .utf8), out, dir)
    }

    @Test func contents() throws {
        let (html, _, _) = try report()
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.hasSuffix("</html>\n"))
        #expect(html.contains("<code>python3 crawler.py --pages 10</code>"))
        #expect(html.contains("eventlet 0.41.3 · host testhost · pid 4242"))
        // Summary: 2 stalls, 90 ms stalled, longest 60 ms, 125 ms of victim wait.
        for card in ["<b>2</b><span>stalls</span>", "<b>90ms</b>", "<b>60ms</b><span>longest stall</span>", "<b>125ms</b>"] {
            #expect(html.contains(card), "\(card)")
        }
        // Timeline: the thread lane and the greenthread lanes (stallers first, then victims).
        #expect(html.contains(">MainThread (10)</text>"))
        let lanes = ["fetch_page #2", "parser #5", "fetch_page #3", "fetch_page #4"].map { ">\($0)</text>" }
        let positions = lanes.compactMap { html.range(of: $0)?.lowerBound }
        #expect(positions.count == 4 && positions == positions.sorted(), "greenthread lanes in order \(lanes)")
        // Each stall on its thread and its greenthread.
        #expect(html.components(separatedBy: "class=\"stall hit\"").count - 1 == 4)
        #expect(html.contains("class=\"ready\""))  // victims' waiting is drawn
        // Call sites and the worst stalls, with stacks and victims.
        #expect(html.contains("<td data-v=\"fetch\">fetch</td>"))
        #expect(html.contains("<b>60ms</b> in <code>fetch (app.py:42)</code>"))
        #expect(
            html.contains(
                "<li class=\"internal\">switch (eventlet/hubs/hub.py:300)</li><li>fetch (app.py:42)</li><li>handler (app.py:10)</li>"
            ))
        #expect(
            html.contains(
                "<tr><td>fetch_page #3</td><td class=\"num\">50ms</td></tr><tr><td>fetch_page #4</td><td class=\"num\">45ms</td></tr>"
            ))
        let stallIDs = html.components(separatedBy: "<details class=\"stall\" id=\"stall-").count - 1
        #expect(stallIDs == 2)
    }

    /// Nothing is loaded from elsewhere: no external scripts, styles, images or fonts.
    @Test func selfContained() throws {
        let (html, _, _) = try report()
        for needle in ["http://", "https://", "src=", "<link", "@import", "url("] {
            #expect(!html.contains(needle), "found \(needle)")
        }
    }

    /// A long recording: the worst minutes are drawn, worst first.
    @Test func worstWindows() throws {
        let dir = TempDir()
        let db = try Scenario().imported(in: dir)
        // Windows of 20 ms over a 150 ms recording: the fetch stall's window is the worst.
        let s = try HTMLReport.write(
            try TraceStore(path: db), to: try ByteWriter(path: dir.file("r.html")),
            options: ReportOptions(windows: 2, windowNs: ms(20)))
        #expect(s.windows.count == 2)
        #expect(s.windows[0] == (ms(0), ms(20)) || s.windows[0].from == ms(20))
        let html = try String(contentsOfFile: dir.file("r.html"), encoding: .utf8)
        #expect(html.contains("Timeline of the worst minutes"))
        #expect(html.contains("class=\"win\""))
    }

    @Test func noStalls() throws {
        let dir = TempDir()
        // A threshold above every run: no stall.
        let trace = dir.file("t.trace")
        var sc = Scenario()
        sc.fetchStall = 5
        sc.parseStall = 5
        FileManager.default.createFile(atPath: trace, contents: Data(sc.bytes()))
        _ = try TraceImporter.run(ImportOptions(tracePath: trace, databasePath: dir.file("t.db")))
        let s = try HTMLReport.write(try TraceStore(path: dir.file("t.db")), to: try ByteWriter(path: dir.file("r.html")))
        #expect(s.stalls == 0)
        let html = try String(contentsOfFile: dir.file("r.html"), encoding: .utf8)
        #expect(html.contains("No stalls"))
    }

    /// The page renders in headless Chromium: its script ran to the end (it marks <html>), no
    /// script error was logged, and a non-empty PNG screenshot was produced.
    @Test func rendersInHeadlessChromium() throws {
        let (_, page, dir) = try report()
        let png = dir.file("report.png")
        let r = try renderInChromium(page, screenshot: png)
        #expect(r.errors == [], "\(r.log)")
        #expect(
            r.dom.contains("<html lang=\"en\" data-unclog-ready=\"2\">"),
            "script marker missing (2 SVGs expected): \(r.dom.prefix(300))")
        let data = try Data(contentsOf: URL(fileURLWithPath: png))
        #expect(data.count > 20_000)
        #expect(Array(data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        if let keep = ProcessInfo.processInfo.environment["UNCLOG_KEEP_SCREENSHOT"], !keep.isEmpty {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(atPath: png, toPath: keep)
        }
    }

    /// The error check is real: a page whose script throws is caught, and its marker is missing.
    @Test func chromiumCheckCatchesScriptErrors() throws {
        let dir = TempDir()
        let page = dir.file("broken.html")
        try """
        <!DOCTYPE html><html><body><p>broken</p><script>
        var x = null; x.boom();
        document.documentElement.setAttribute("data-unclog-ready", "1");
        </script></body></html>
        """.write(toFile: page, atomically: true, encoding: .utf8)
        let r = try renderInChromium(page, screenshot: dir.file("broken.png"))
        #expect(!r.errors.isEmpty, "\(r.log)")
        #expect(r.dom.contains("<p>broken</p>") && !r.dom.contains("data-unclog-ready=\"1\""))
    }

    @Test func cli() throws {
        let dir = TempDir()
        let db = try Scenario().imported(in: dir)
        let r = try runProgram(try unclogExecutable(), ["report", db, "-o", dir.file("cli.html")])
        #expect(r.status == 0, "\(r)")
        #expect(r.stderr.contains("2 stalls, 1 window"), "\(r)")
        #expect(FileManager.default.fileExists(atPath: dir.file("cli.html")))
        let bad = try runProgram(try unclogExecutable(), ["report", db, "--trace", "7", "-o", dir.file("bad.html")])
        #expect(bad.status == 2, "\(bad)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("bad.html")))
    }
}
