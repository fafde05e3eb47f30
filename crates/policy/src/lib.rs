//! Policy evaluation (pure). Filled in by the policy issue.
