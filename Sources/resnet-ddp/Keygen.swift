import ArgumentParser
import Foundation
import Transport

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write CURVE key pairs for an authenticated, encrypted cluster.",
        discussion: """
            For each NAME, writes DIR/NAME.key (the key pair; mode 0600, keep it secret) and DIR/NAME.pub \
            (the public key). Give the coordinator its .key with --curve-secret-key and a file listing the \
            workers' public keys (the .pub files concatenated) with --authorized-keys; give each worker its \
            own .key and the coordinator's .pub with --coordinator-key. Existing files are never overwritten.
            """)

    @Argument(help: "Names of the key pairs, e.g. coordinator worker1 worker2.")
    var names: [String]
    @Option(help: ArgumentHelp("Directory for the key files.", valueName: "dir"))
    var out = "keys"

    func validate() throws {
        if names.isEmpty { throw ValidationError("give at least one name") }
        for name in names where name.isEmpty || name.contains("/") || name.hasPrefix(".") {
            throw ValidationError("'\(name)' is not a plain file name")
        }
    }

    func run() throws {
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch { fail("cannot create \(out): \(error.localizedDescription)") }
        for name in names {
            let secret = URL(fileURLWithPath: out).appendingPathComponent("\(name).key").path
            let pub = URL(fileURLWithPath: out).appendingPathComponent("\(name).pub").path
            for path in [secret, pub] where FileManager.default.fileExists(atPath: path) {
                fail("\(path) exists; keys are never overwritten (remove it first)")
            }
            let pair: CurveKeyPair
            do { pair = try CurveKeyPair.generate() } catch { fail("\(error)") }
            guard FileManager.default.createFile(atPath: secret, contents: Data(pair.fileText.utf8), attributes: [.posixPermissions: 0o600]),
                FileManager.default.createFile(atPath: pub, contents: Data("public-key \(pair.publicKey) \(name)\n".utf8))
            else {
                fail("cannot write the key files in \(out)")
            }
            print("\(name): \(secret) (secret), \(pub) (public: \(pair.publicKey))")
        }
    }
}

/// CURVE flags of the coordinator.
struct CoordinatorSecurityOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The coordinator's key pair (from keygen): turns on CURVE authentication and encryption.",
            valueName: "file"))
    var curveSecretKey: String?
    @Option(help: ArgumentHelp("Public keys of the workers allowed to join, one a line (.pub files concatenated).", valueName: "file"))
    var authorizedKeys: String?

    func validate() throws {
        if (curveSecretKey == nil) != (authorizedKeys == nil) {
            throw ValidationError("--curve-secret-key and --authorized-keys go together")
        }
    }

    func load() throws -> (keys: CurveKeyPair, authorized: Set<String>)? {
        guard let curveSecretKey, let authorizedKeys else { return nil }
        return (try CurveKeyPair.load(curveSecretKey), try CurveKeys.authorized(authorizedKeys))
    }
}

/// CURVE flags of a worker.
struct WorkerSecurityOptions: ParsableArguments {
    @Option(help: ArgumentHelp("This worker's key pair (from keygen), for a coordinator that uses CURVE.", valueName: "file"))
    var curveSecretKey: String?
    @Option(help: ArgumentHelp("The coordinator's public key: its .pub file or the 40-character key.", valueName: "key"))
    var coordinatorKey: String?

    func validate() throws {
        if (curveSecretKey == nil) != (coordinatorKey == nil) {
            throw ValidationError("--curve-secret-key and --coordinator-key go together")
        }
    }

    func load() throws -> (keys: CurveKeyPair, coordinatorKey: String)? {
        guard let curveSecretKey, let coordinatorKey else { return nil }
        return (try CurveKeyPair.load(curveSecretKey), try CurveKeys.publicKey(coordinatorKey))
    }
}

/// Whether an endpoint is reachable from this machine only.
func isLoopback(_ endpoint: String) -> Bool {
    endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") || endpoint.hasPrefix("tcp://127.")
        || endpoint.hasPrefix("tcp://localhost:") || endpoint.hasPrefix("tcp://[::1]:")
}
