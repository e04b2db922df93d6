import Models
import Training
for threads in [1, 2] {
    for kind in [Benchmark.Kind.training, .inference] {
        let r = Benchmark.run(try! Architecture(depth: 20), kind: kind, threads: threads, batch: 128, warmup: 3, steps: 10)
        print(r)
    }
}
