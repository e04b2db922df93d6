import Foundation
import Testing
import Transport

/// libzmq binds `*`, an address or an interface but not a host name ("No such device", which
/// broke cluster/slurm-task and cluster/launch): a host name binds every interface and the
/// endpoint keeps the name for peers.
struct TCPEndpointTests {
    @Test func hostNamesAreToldApartFromWhatLibzmqBinds() {
        #expect(TCPEndpoint.hostName(in: "tcp://node-7.cluster:5555") == "node-7.cluster")
        #expect(TCPEndpoint.hostName(in: "tcp://localhost:*") == "localhost")
        for bindable in [
            "tcp://*:5555", "tcp://10.0.0.3:5555", "tcp://127.0.0.1:*", "tcp://[::1]:5555", "tcp://lo:5555",
            "ipc:///tmp/x.sock", "inproc://x",
        ] {
            #expect(TCPEndpoint.hostName(in: bindable) == nil, "\(bindable)")
        }
        #expect(TCPEndpoint.replacingHost(in: "tcp://0.0.0.0:41234", with: "node-7") == "tcp://node-7:41234")
    }

    @Test func bindingAHostNameServesPeersThatUseTheName() throws {
        let host = ProcessInfo.processInfo.hostName
        let context = try ZMQContext()
        let server = try ZMQSocket(context, kind: .router, lingerMilliseconds: 0)
        defer { server.close() }
        let endpoint = try server.bind("tcp://\(host):*")
        #expect(endpoint.hasPrefix("tcp://\(host):"), "\(endpoint)")
        let client = try ZMQSocket(context, kind: .dealer, lingerMilliseconds: 0)
        defer { client.close() }
        try client.connect(endpoint)
        try client.send([[1, 2, 3]], timeout: 10, to: "server")
        let frames = try #require(try server.receive(timeout: 10))
        #expect(frames.last == [1, 2, 3])
    }
}
