/// Parsers for the human units the config accepts: durations ("250ms",
/// "5s", "10m", "2h", "7d") and byte sizes ("512KiB", "4GiB", "1GB").
enum ConfigValues {
    /// A duration in nanoseconds, or nil if `text` is not one.
    static func duration(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [("ms", 1_000_000), ("us", 1_000), ("ns", 1), ("s", 1_000_000_000),
                                        ("m", 60_000_000_000), ("h", 3_600_000_000_000), ("d", 86_400_000_000_000)]
        let trimmed = text.trimmingSpaces
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count).trimmingSpaces
            guard let value = Int64(number), value >= 0 else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: scale)
            return overflow ? nil : product
        }
        return nil
    }

    /// Why `text` is not a duration, when the reason is more than "not one":
    /// a number without a unit, a negative one, one too long for 64-bit
    /// nanoseconds; nil otherwise.
    static func durationProblem(_ text: String) -> String? {
        let trimmed = text.trimmingSpaces
        let digits = trimmed.drop { $0 == "-" }
        if !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) {
            return trimmed.hasPrefix("-") ? "\"\(text)\" is negative and has no unit"
                : "\"\(text)\" has no unit: write \"\(trimmed)s\" (or an unquoted \(trimmed) for seconds)"
        }
        if trimmed.hasPrefix("-") { return "\"\(text)\" is negative" }
        let number = trimmed.prefix { $0.isASCII && $0.isNumber }
        let unit = trimmed.dropFirst(number.count).trimmingSpaces
        if !number.isEmpty, ["ms", "us", "ns", "s", "m", "h", "d"].contains(String(unit)) {
            return "\"\(text)\" is too long (at most \(Int64.max / 86_400_000_000_000)d)"
        }
        return nil
    }

    /// A size in bytes, or nil if `text` is not one.
    static func size(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
                                        ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000),
                                        ("TB", 1_000_000_000_000), ("B", 1)]
        let trimmed = text.trimmingSpaces
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count).trimmingSpaces
            guard let value = Int64(number), value >= 0 else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: scale)
            return overflow ? nil : product
        }
        if let plain = Int64(trimmed), plain >= 0 { return plain }
        return nil
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
