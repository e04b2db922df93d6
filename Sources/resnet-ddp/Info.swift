import ArgumentParser
import Foundation
import Models
import TensorCore

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the engine's vector unit and the architecture table: depth, weighted layers, parameters and multiply-accumulates per image.")

    @Flag(help: "One JSON object per model (keys: model, depth, residual, layers, parameters, macs).")
    var json = false

    func run() throws {
        let models = try [true, false].flatMap { residual in
            try Architecture.paperDepths.map { try Architecture(depth: $0, residual: residual) }
        }
        if json {
            for a in models {
                print(
                    "{\"model\":\"\(a.name)\",\"depth\":\(a.depth),\"residual\":\(a.residual),\"layers\":\(a.weightedLayers),"
                        + "\"parameters\":\(a.parameterCount),\"macs\":\(a.macsPerImage)}")
            }
            return
        }
        print("engine: \(VectorUnit.summary)")
        print("model        depth  layers  parameters      MACs/image")
        for a in models {
            print(
                a.name.padding(toLength: 12, withPad: " ", startingAt: 0)
                    + String(
                        format: " %5d  %6d  %10d  %14d  (%.2fM params, %.1fM MACs)", a.depth, a.weightedLayers,
                        a.parameterCount, a.macsPerImage, Double(a.parameterCount) / 1e6, Double(a.macsPerImage) / 1e6))
        }
    }
}
