import Foundation
import Testing
import UnderstudyTestSupport

/// The WebDriver harness the WebManager's browser tests stand on, against a page of its own:
/// a real headless Chromium clicks, types, reads and takes screenshots, also at a phone's size.
@Suite("Browser harness (headless Chromium over WebDriver)", .serialized)
struct BrowserHarnessTests {
    static let page = """
        <!doctype html><meta name=viewport content="width=device-width">
        <input id=name><button id=go onclick="document.getElementById('out').textContent='hello '+document.getElementById('name').value">go</button>
        <p id=out>nothing</p>
        """

    @Test("navigate, type, click, read, run a script, screenshot, resize", .requires(WebDriverSession.chromium))
    func drivesARealBrowser() async throws {
        let file = NSTemporaryDirectory() + "understudy-harness-\(getpid()).html"
        try Self.page.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let browser = try await WebDriverSession.start()
        do {
            try await browser.navigate(to: "file://" + file)
            try await browser.type("cluster", into: try await browser.find("#name"))
            try await browser.click(try await browser.find("#go"))
            try await browser.waitUntil("the greeting") { try await browser.textOf("#out") == "hello cluster" }
            #expect(try await browser.execute("return document.querySelectorAll('button').length") as? Int == 1)
            #expect(try await browser.findAll(".absent").isEmpty)
            let yes = try await browser.execute("return !document.getElementById('out').hidden")
            #expect(try await browser.holds("return !document.getElementById('out').hidden"), "\(String(describing: yes)) \(type(of: yes))")
            #expect(try await !browser.holds("return document.getElementById('out').hidden"))
            let shot = TestArtifacts.path("browser-harness.png")
            try await browser.screenshot(to: shot)
            let png = try Data(contentsOf: URL(fileURLWithPath: shot))
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
            try await browser.setWindowSize(width: 390, height: 844)
            let width = try await browser.execute("return window.innerWidth") as? Int
            #expect(width.map { $0 <= 390 } == true, "inner width \(String(describing: width))")
        } catch {
            await browser.quit()
            throw error
        }
        await browser.quit()
    }
}
