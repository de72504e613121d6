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
