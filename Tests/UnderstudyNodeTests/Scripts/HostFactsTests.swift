import Foundation
import Testing
import UnderstudyModel

@testable import UnderstudyNode

@Suite("HostFacts and script environment")
struct HostFactsTests {
    @Test func parsesOSRelease() {
        let text = """
            # a comment
            NAME="Debian GNU/Linux"
            VERSION_ID="12"
            ID=debian
            PRETTY_NAME='Debian 12'
            QUOTED="say \\"hi\\""

            """
        let fields = HostFacts.parseOSRelease(text)
        #expect(fields["NAME"] == "Debian GNU/Linux")
        #expect(fields["VERSION_ID"] == "12")
        #expect(fields["ID"] == "debian")
        #expect(fields["PRETTY_NAME"] == "Debian 12")
        #expect(fields["QUOTED"] == #"say "hi""#)
    }

    @Test func detectsFromAnOSReleaseFile() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let path = folder + "/os-release"
            try "NAME=\"Rocky Linux\"\nVERSION_ID=\"9.4\"\n".write(toFile: path, atomically: false, encoding: .utf8)
            let facts = HostFacts.detect(productVersion: "0.1.0", installPath: "/opt/u", osReleasePaths: [path])
            #expect(facts.osName == "Rocky Linux")
            #expect(facts.osVersion == "9.4")
            #expect(
                facts.environment == [
                    "CLP_VERSION_FULL": "0.1.0", "CLP_PATH": "/opt/u", "CLP_OSNAME": "Rocky Linux", "CLP_OSVER": "9.4",
                ])
        }
    }

    @Test func fallsBackToUname() {
        let facts = HostFacts.detect(productVersion: "0.1.0", installPath: "/opt/u", osReleasePaths: ["/nonexistent"])
        #expect(facts.osName == "Linux")
        #expect(!facts.osVersion.isEmpty)
    }

    @Test func baseEnvironmentIsFixed() {
        let base = ScriptEnvironment.base()
        #expect(Set(base.keys) == ["PATH", "LANG", "HOME"])
        #expect(base["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        #expect(base["LANG"] == "C.UTF-8")
        #expect(base["HOME"]?.hasPrefix("/") == true)
        #expect(ScriptEnvironment.base(home: "/var/lib/x")["HOME"] == "/var/lib/x")
    }

    @Test func composeLayersBaseHostAndContext() {
        let host = HostFacts(productVersion: "1.0", installPath: "/opt/u", osName: "Linux", osVersion: "6")
        let start = ScriptContext(event: .start, isHomeServer: true, priority: 1, groupName: "g", resourceName: "r")
        let startEnvironment = ScriptEnvironment.compose(base: ScriptEnvironment.base(home: "/root"), host: host, context: start)
        #expect(
            startEnvironment == [
                "PATH": ScriptEnvironment.standardPath, "LANG": "C.UTF-8", "HOME": "/root",
                "CLP_VERSION_FULL": "1.0", "CLP_PATH": "/opt/u", "CLP_OSNAME": "Linux", "CLP_OSVER": "6",
                "CLP_EVENT": "START", "CLP_SERVER": "HOME", "CLP_DISK": "SUCCESS", "CLP_PRIORITY": "1",
                "CLP_GROUPNAME": "g", "CLP_RESOURCENAME": "r",
            ])

        let stop = ScriptContext(
            event: .start, isHomeServer: false, diskSucceeded: false, priority: 3, groupName: "g",
            resourceName: "r", factor: StopFactor.none, lastAction: .reboot)
        let stopEnvironment = ScriptEnvironment.compose(
            base: ScriptEnvironment.base(), host: host, context: stop, asyncStartPID: 1234)
        #expect(stopEnvironment["CLP_PID"] == "1234")
        #expect(stopEnvironment["CLP_FACTOR"] == "")
        #expect(stopEnvironment["CLP_LASTACTION"] == "REBOOT")
        #expect(stopEnvironment["CLP_SERVER"] == "OTHER")
        #expect(stopEnvironment["CLP_DISK"] == "FAILURE")
    }

    @Test func laterLayersWin() {
        let host = HostFacts(productVersion: "1.0", installPath: "/opt/u", osName: "Linux", osVersion: "6")
        let merged = ScriptEnvironment.compose(
            base: ["PATH": "/bin", "CLP_PATH": "base"], host: host, variables: ["PATH": "/custom"])
        #expect(merged["PATH"] == "/custom")
        #expect(merged["CLP_PATH"] == "/opt/u")
    }
}
