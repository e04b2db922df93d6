import Models
import Training

/// The coordinator's checks of what its members reply. Without CURVE a member is as
/// unauthenticated as any peer: a reply with hostile counts must cost the run that member (the
/// step runs again without it), never a trap in a sum or a corrupt metric.
extension ControlMessage.Result {
    /// What is wrong with this result for a shard of `images` images, or nil. `hashRequested`:
    /// the step asked for the parameter hash.
    public func problem(images: Int, hashRequested: Bool) -> String? {
        if statistics.images != images { return "statistics.images \(statistics.images) for a shard of \(images)" }
        if statistics.correct < 0 || statistics.correct > images { return "statistics.correct \(statistics.correct) must be 0-\(images)" }
        if statistics.nonFinite < 0 || statistics.nonFinite > images {
            return "statistics.nonFinite \(statistics.nonFinite) must be 0-\(images)"
        }
        if hashRequested != (parameterHash != nil) {
            return hashRequested ? "parameterHash is missing" : "parameterHash was not asked for"
        }
        if let parameterHash, !isParameterHash(parameterHash) { return "parameterHash must be 1-16 hex digits" }
        return nil
    }
}

extension ControlMessage.Ready {
    /// What is wrong with this ready's fields, or nil (whether it matches the others is checked apart).
    public func problem() -> String? {
        if completedSteps < 0 { return "completedSteps \(completedSteps) is negative" }
        if !isParameterHash(parameterHash) { return "parameterHash must be 1-16 hex digits" }
        return nil
    }
}

extension Evaluation {
    /// What is wrong with this evaluation of images `range` of a set, or nil.
    public func problem(range: Range<Int>) -> String? {
        let first1000 = range.clamped(to: 0..<1000).count
        if images != range.count { return "images \(images) for a range of \(range.count)" }
        if wrong < 0 || wrong > images { return "wrong \(wrong) must be 0-\(images)" }
        if imagesFirst1000 != first1000 { return "imagesFirst1000 \(imagesFirst1000) for a range holding \(first1000) of them" }
        if wrongFirst1000 < 0 || wrongFirst1000 > min(wrong, first1000) {
            return "wrongFirst1000 \(wrongFirst1000) must be 0-\(min(wrong, first1000))"
        }
        let classes = Architecture.classes
        guard confusion.count == classes, confusion.allSatisfy({ $0.count == classes }) else {
            return "confusion must be \(classes) x \(classes)"
        }
        if confusion.joined().contains(where: { $0 < 0 || $0 > images }) { return "confusion entries must be 0-\(images)" }
        let total = confusion.joined().reduce(0, +)  // at most 100 x images: no overflow
        let correct = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }
        if total != images || images - correct != wrong {
            return "confusion sums to \(total) images and \(total - correct) wrong; the counts say \(images) and \(wrong)"
        }
        return nil
    }
}

/// The hex form `hex(_:)` gives a 64-bit hash.
func isParameterHash(_ text: String) -> Bool {
    (1...16).contains(text.utf8.count) && text.allSatisfy(\.isHexDigit)
}
