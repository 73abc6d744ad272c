import Store

/// The store's `ClaimResult`, named where Scheduler (which has its own `ClaimResult`) is not imported.
typealias StoreClaim = ClaimResult
