//! A memory budget for registry documents processed at once.
//!
//! Processing a document (an npm packument, a PyPI project page or legacy JSON document)
//! holds its body, what is read from it and the rendering at the same time: about three
//! times the body. A burst of cold requests for different big documents would otherwise
//! hold all of them at once. Documents under 1 MiB pass freely; a bigger one waits for
//! three times its size in MiB, at most the whole budget (so one document larger than the
//! budget still passes, alone).

use tokio::sync::{Semaphore, SemaphorePermit};

/// Default budget of each adapter, in MiB of documents (weighted 3× their size).
pub const DEFAULT_MIB: u32 = 384;

/// Bodies under this size need no permit.
const FREE_BYTES: usize = 1 << 20;

pub struct DocBudget {
    permits: Semaphore,
    mib: u32,
}

impl DocBudget {
    pub fn new(mib: u32) -> DocBudget {
        let mib = mib.max(1);
        DocBudget {
            permits: Semaphore::new(mib as usize),
            mib,
        }
    }

    /// Wait until a body of `bytes` may be processed; hold the permit while processing.
    pub async fn permit(&self, bytes: usize) -> Option<SemaphorePermit<'_>> {
        if bytes < FREE_BYTES {
            return None;
        }
        let weight = u32::try_from(bytes.div_ceil(1 << 20).saturating_mul(3)).unwrap_or(u32::MAX);
        self.permits.acquire_many(weight.min(self.mib)).await.ok()
    }

    /// MiB not held right now (metrics, tests).
    pub fn available_mib(&self) -> usize {
        self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[tokio::test]
    async fn big_documents_wait_for_their_share_and_one_too_big_still_passes() {
        let budget = DocBudget::new(10);
        // Small bodies take nothing.
        assert!(budget.permit(FREE_BYTES - 1).await.is_none());
        assert_eq!(budget.available_mib(), 10);
        // 2 MiB take 6 MiB; a second one does not fit until the first is done.
        let first = budget.permit(2 << 20).await.expect("a permit");
        assert_eq!(budget.available_mib(), 4);
        assert!(budget.permit(2 << 20).now_or_never().is_none());
        drop(first);
        let second = budget.permit((2 << 20) - 1).now_or_never().flatten();
        assert!(second.is_some(), "fits once the first is done");
        drop(second);
        // Larger than the whole budget: takes all of it, and passes.
        let huge = budget.permit(100 << 20).now_or_never().flatten();
        assert!(huge.is_some());
        assert_eq!(budget.available_mib(), 0);
        drop(huge);
        assert_eq!(budget.available_mib(), 10);
    }
}
