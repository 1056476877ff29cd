//! Another writer of the controller's fields of a SeccompStatus. Two operators over one namespace
//! that read different policies (`--policy-selector`), each with a lease of its own, write the
//! same status under the same field manager with different `policies` (and one's Label policy
//! labels the pod, the other's lack of one takes the labels off): each undid the other's write at
//! once, and did so for ever, at up to both operators' write rates. When someone else replaces
//! the status this controller wrote, again soon after each write, the pod is held: its passes
//! (status, labels, actions) wait, each time longer, and the operator says so.
//!
//! Pure: the controller's clock is whole seconds since it started, given by the caller.

use std::time::Duration;

/// Replacements count in a row while each comes within this long of the write it replaced.
const WINDOW_SECS: u32 = 600;
/// The longest wait before a replaced status is put back.
const LONGEST_DELAY_SECS: u64 = 300;

/// What became of this controller's last write of one pod's status. 16 bytes, in every pod's
/// entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overwrites {
    /// The low 32 bits of the fingerprint of the controller's part it last wrote.
    own: u32,
    /// When it wrote it (the controller's clock; 0: never).
    own_at: u32,
    /// The pod's passes wait until then (the controller's clock).
    hold_until: u32,
    /// Its writes replaced by someone else's, in a row (see [`WINDOW_SECS`]).
    in_a_row: u8,
}

fn low_bits(fingerprint: u64) -> u32 {
    // Truncation intended: two different statuses sharing 32 bits only cost one count.
    fingerprint as u32
}

impl Overwrites {
    /// The controller writes a status with this fingerprint now (called before the request, so
    /// that its own write's watch event, which may come before the answer, is known as its own).
    pub fn writing(&mut self, fingerprint: u64, now: u32) {
        self.own = low_bits(fingerprint);
        self.own_at = now.max(1);
    }

    /// The stored status's controller part went from `previous` to `next` (fingerprints) at
    /// `now`. Returns how many times in a row someone else has replaced the controller's write, or
    /// 0 when this is not such a replacement.
    pub fn replaced(&mut self, previous: Option<u64>, next: u64, now: u32) -> u8 {
        let was_own = self.own_at != 0 && previous.map(low_bits) == Some(self.own);
        if !was_own || low_bits(next) == self.own {
            return 0;
        }
        self.in_a_row = if now.saturating_sub(self.own_at) <= WINDOW_SECS {
            self.in_a_row.saturating_add(1)
        } else {
            1
        };
        if let Some(delay) = Self::delay(self.in_a_row) {
            let delay = u32::try_from(delay.as_secs()).unwrap_or(u32::MAX);
            self.hold_until = now.saturating_add(delay);
        }
        self.in_a_row
    }

    /// How much longer the pod's passes wait, at `now`: `None` when they need not.
    pub fn held(&self, now: u32) -> Option<Duration> {
        (self.hold_until > now).then(|| Duration::from_secs(u64::from(self.hold_until - now)))
    }

    /// How long to wait before putting back a status replaced `in_a_row` times: at once the
    /// first time (a person's edit, an upgrade), then 2 s, 4 s, ... up to 5 minutes.
    pub fn delay(in_a_row: u8) -> Option<Duration> {
        (in_a_row >= 2).then(|| {
            let exponent = u32::from(in_a_row - 1).min(16);
            Duration::from_secs((1u64 << exponent).min(LONGEST_DELAY_SECS))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_someone_elses_replacement_of_the_controllers_write_counts() {
        let mut overwrites = Overwrites::default();
        // A status the controller never wrote (listed at start, another's) is nobody's count.
        assert_eq!(overwrites.replaced(Some(1), 2, 10), 0);
        overwrites.writing(7, 10);
        // Its own write coming back from the watch (before or after the answer).
        assert_eq!(overwrites.replaced(Some(1), 7, 10), 0);
        // Someone else's status replaced by another: not the controller's write.
        assert_eq!(overwrites.replaced(Some(3), 4, 11), 0);
        assert_eq!(overwrites.replaced(Some(7), 8, 11), 1);
        // The first replacement is put right at once.
        assert_eq!(overwrites.held(11), None);
        overwrites.writing(7, 12);
        assert_eq!(overwrites.replaced(Some(7), 8, 12), 2);
        // The second: the pod's passes wait 2 s.
        assert_eq!(overwrites.held(12), Some(Duration::from_secs(2)));
        assert_eq!(overwrites.held(13), Some(Duration::from_secs(1)));
        assert_eq!(overwrites.held(14), None);
        overwrites.writing(7, 14);
        assert_eq!(overwrites.replaced(Some(7), 8, 15), 3);
        assert_eq!(overwrites.held(15), Some(Duration::from_secs(4)));
        // Long after its write: a new run, counted from one.
        overwrites.writing(7, 20);
        assert_eq!(overwrites.replaced(Some(7), 8, 20 + WINDOW_SECS + 1), 1);
        // Only the fingerprint's low bits are kept: a status sharing them is taken for its own.
        overwrites.writing(7, 1_000);
        assert_eq!(overwrites.replaced(Some(7), 7 | (1 << 40), 1_000), 0);
        assert_eq!(std::mem::size_of::<Overwrites>(), 16);
    }

    #[test]
    fn a_replaced_status_is_put_back_less_and_less_often() {
        assert_eq!(Overwrites::delay(0), None);
        assert_eq!(Overwrites::delay(1), None);
        let delays: Vec<u64> = (2..=12)
            .map(|n| Overwrites::delay(n).map_or(0, |d| d.as_secs()))
            .collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(Overwrites::delay(u8::MAX), Some(Duration::from_secs(300)));
    }
}
