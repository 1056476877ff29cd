//! The controller's work queue: each key at most once in the queue and at most once in work (a key
//! that changes while a worker has it is queued again when the worker is done), and delayed
//! requeues that keep the earliest time asked for.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    hash::Hash,
    sync::Mutex,
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

/// The room a drained queue keeps.
const DRAINED_CAPACITY: usize = 64;

pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    ready: Notify,
}

struct State<K> {
    queue: VecDeque<K>,
    queued: HashSet<K>,
    active: HashSet<K>,
    /// Changed while a worker had it.
    again: HashSet<K>,
    /// Requeues waiting for their time, by key and in time order.
    delayed: HashMap<K, (Instant, u64)>,
    timeline: BTreeMap<(Instant, u64), K>,
    sequence: u64,
    closed: bool,
}

impl<K: Clone + Eq + Hash> Default for WorkQueue<K> {
    fn default() -> Self {
        WorkQueue {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queued: HashSet::new(),
                active: HashSet::new(),
                again: HashSet::new(),
                delayed: HashMap::new(),
                timeline: BTreeMap::new(),
                sequence: 0,
                closed: false,
            }),
            ready: Notify::new(),
        }
    }
}

impl<K: Clone + Eq + Hash> WorkQueue<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` now (a delayed requeue of it is dropped: it is being looked at anyway).
    pub fn add(&self, key: K) {
        let mut state = self.lock();
        if let Some(slot) = state.delayed.remove(&key) {
            state.timeline.remove(&slot);
        }
        if state.active.contains(&key) {
            state.again.insert(key);
        } else if state.queued.insert(key.clone()) {
            state.queue.push_back(key);
            drop(state);
            self.ready.notify_one();
        }
    }

    pub fn add_all(&self, keys: impl IntoIterator<Item = K>) {
        for key in keys {
            self.add(key);
        }
    }

    /// Queues `key` after `delay`, unless it is queued before that (the earliest request wins).
    pub fn add_after(&self, key: K, delay: Duration) {
        let at = Instant::now() + delay;
        let mut state = self.lock();
        if state.queued.contains(&key) {
            return;
        }
        if let Some(&(current, sequence)) = state.delayed.get(&key) {
            if current <= at {
                return;
            }
            state.timeline.remove(&(current, sequence));
        }
        state.sequence += 1;
        let slot = (at, state.sequence);
        state.delayed.insert(key.clone(), slot);
        state.timeline.insert(slot, key);
        drop(state);
        // A sleeping worker recomputes its wake-up time.
        self.ready.notify_one();
    }

    /// Keys whose delay has passed move to the queue; returns the next deadline, if any.
    fn promote(state: &mut State<K>, now: Instant) -> Option<Instant> {
        while let Some(entry) = state.timeline.first_entry() {
            if entry.key().0 > now {
                return Some(entry.key().0);
            }
            let key = entry.remove();
            state.delayed.remove(&key);
            if state.active.contains(&key) {
                state.again.insert(key);
            } else if state.queued.insert(key.clone()) {
                state.queue.push_back(key);
            }
        }
        None
    }

    /// The next key to work on; `None` once the queue is closed. The caller must call
    /// [`WorkQueue::done`] with it.
    pub async fn next(&self) -> Option<K> {
        loop {
            let next_deadline = {
                let mut state = self.lock();
                if state.closed {
                    return None;
                }
                let deadline = Self::promote(&mut state, Instant::now());
                if let Some(key) = state.queue.pop_front() {
                    state.queued.remove(&key);
                    state.active.insert(key.clone());
                    // Others may be waiting for the rest of the queue.
                    if !state.queue.is_empty() {
                        self.ready.notify_one();
                    } else {
                        // A first sync queues every pod at once; the room it took is not kept
                        // for good (about 90 bytes a pod).
                        state.queue.shrink_to(DRAINED_CAPACITY);
                        state.queued.shrink_to(DRAINED_CAPACITY);
                    }
                    return Some(key);
                }
                deadline
            };
            match next_deadline {
                Some(at) => {
                    tokio::select! {
                        _ = self.ready.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => self.ready.notified().await,
            }
        }
    }

    /// Ends work on `key`; if it changed meanwhile, it is queued again.
    pub fn done(&self, key: &K) {
        let mut state = self.lock();
        state.active.remove(key);
        if state.again.remove(key) && state.queued.insert(key.clone()) {
            state.queue.push_back(key.clone());
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Wakes every waiting worker with `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_waiters();
    }

    /// Queued keys (not counting delayed ones or keys in work).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nothing queued and nothing in work (delayed requeues may be waiting).
    pub fn is_idle(&self) -> bool {
        let state = self.lock();
        state.queue.is_empty() && state.active.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_deduplicated_and_requeued_when_changed_in_work() {
        let queue = WorkQueue::default();
        queue.add("a");
        queue.add("b");
        queue.add("a");
        assert_eq!(queue.len(), 2);
        let first = queue.next().await.expect("a");
        assert_eq!(first, "a");
        // Changed while in work: not handed out twice at once, but again after done.
        queue.add("a");
        assert_eq!(queue.next().await, Some("b"));
        assert!(queue.is_empty());
        assert!(!queue.is_idle(), "b is in work");
        queue.done(&"b");
        queue.done(&"a");
        assert!(!queue.is_idle(), "a changed in work, so it is queued again");
        assert_eq!(queue.next().await, Some("a"));
        queue.done(&"a");
        assert!(queue.is_idle());
    }

    #[tokio::test]
    async fn a_drained_queue_gives_its_room_back() {
        let queue = WorkQueue::default();
        queue.add_all(0..10_000);
        while !queue.is_empty() {
            let key = queue.next().await.expect("a key");
            queue.done(&key);
        }
        let state = queue.lock();
        assert!(
            state.queue.capacity() <= 2 * DRAINED_CAPACITY && state.queued.capacity() <= 2 * DRAINED_CAPACITY,
            "room kept: {} and {}",
            state.queue.capacity(),
            state.queued.capacity()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_keys_come_at_their_time_and_the_earliest_request_wins() {
        let queue = std::sync::Arc::new(WorkQueue::default());
        queue.add_after("late", Duration::from_secs(60));
        queue.add_after("late", Duration::from_secs(5));
        queue.add_after("later", Duration::from_secs(30));
        let started = Instant::now();
        assert_eq!(queue.next().await, Some("late"));
        assert_eq!(started.elapsed().as_secs(), 5);
        assert_eq!(queue.next().await, Some("later"));
        assert_eq!(started.elapsed().as_secs(), 30);
        // A key queued now drops its delayed requeue.
        queue.add_after("x", Duration::from_secs(10));
        queue.add("x");
        assert_eq!(queue.next().await, Some("x"));
        queue.done(&"x");
        let waiter = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.next().await })
        };
        tokio::time::sleep(Duration::from_secs(100)).await;
        queue.close();
        assert_eq!(
            waiter.await.expect("join"),
            None,
            "nothing else came, and close wakes workers"
        );
    }
}
