//! The open sessions of a SESSION view (DESIGN.md §7), per partition (the view's other group
//! keys), ordered by start, so placing an event touches only its neighbours.
//!
//! An epoch's events arrive aggregated per (partition, time): *atoms*. Placing an atom at `t`
//! joins it to a session that ends after it (`t < end`, end = last event + gap) and to a
//! session that starts less than a gap after it; joining both is a bridge, and the two become
//! one. Bounded only by the gap, sessions only grow and merge as events arrive, never split,
//! so each session's state is the merge of its atoms' partial states and of the sessions it
//! swallowed. With a max_duration they can split, and are formed from atoms (`bounded`).
//!
//! A session is closed when the watermark reaches its end: no accepted event can change it
//! any more (events are accepted while `t + gap > watermark`, and an event inside or before a
//! closed session of its partition is late). A partition's last closed end is kept while it can
//! still make an event late (until the watermark is a gap past it), and stored with the epoch.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::common::HashMap;

mod bounded;

pub use bounded::Reshaped;

/// The open sessions of one view, and the recently closed ends of their partitions.
#[derive(Debug)]
pub struct SessionIndex {
    gap_us: i64,
    /// The max_duration (µs), if sessions are bounded: they then split as well as grow, and
    /// are formed from their atoms (`bounded`).
    max_us: Option<i64>,
    /// Partition -> start -> the open session starting there.
    open: HashMap<Vec<u8>, BTreeMap<i64, Open>>,
    /// Every open session by end: which the watermark closes.
    by_end: BTreeSet<(i64, Vec<u8>, i64)>,
    /// Partition -> end of its latest closed session, while an accepted event could fall in it.
    closed: HashMap<Vec<u8>, i64>,
    closed_by_end: BTreeSet<(i64, Vec<u8>)>,
    /// Changes to `closed` since they were last taken (to store): `None` removes.
    closed_changes: Vec<(Vec<u8>, Option<i64>)>,
    /// With a max_duration: partition -> time -> key of each atom of its open sessions.
    atoms: HashMap<Vec<u8>, BTreeMap<i64, Vec<u8>>>,
    /// Keys of the atoms of sessions closed since they were last taken.
    dropped_atoms: Vec<Vec<u8>>,
}

/// An open session.
#[derive(Debug, Clone)]
struct Open {
    end: i64,
    /// Its group key (as the view's states and rows are keyed).
    key: Vec<u8>,
}

/// A session an epoch made or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// One of the epoch's atoms in it (their rows now carry its start and end).
    pub atom: usize,
    /// The keys of the sessions it replaces (grown or merged); its own key may be among them.
    pub replaces: Vec<Vec<u8>>,
    /// Its partition and start, to give it its key.
    pub partition: Vec<u8>,
    /// Its start (µs).
    pub start: i64,
}

/// Where an epoch's atoms went.
#[derive(Debug, Default)]
pub struct Placement {
    /// Per atom: its session's start and end (µs).
    pub spans: Vec<(i64, i64)>,
    /// The sessions the epoch made or changed.
    pub changed: Vec<Changed>,
}

/// A session being formed while an epoch's atoms are placed.
struct Forming {
    end: i64,
    /// The stored sessions it absorbed: (start, end, key).
    absorbed: Vec<(i64, i64, Vec<u8>)>,
    atoms: Vec<usize>,
}

impl SessionIndex {
    /// No sessions, for a gap of `gap_ms` and, if bounded, a max_duration of `max_ms`.
    pub fn new(gap_ms: u64, max_ms: Option<u64>) -> Self {
        Self {
            gap_us: gap_ms as i64 * 1000,
            max_us: max_ms.map(|ms| ms as i64 * 1000),
            open: HashMap::new(),
            by_end: BTreeSet::new(),
            closed: HashMap::new(),
            closed_by_end: BTreeSet::new(),
            closed_changes: Vec::new(),
            atoms: HashMap::new(),
            dropped_atoms: Vec::new(),
        }
    }

    /// The same with no sessions (what a view starts from before reading storage back).
    pub fn emptied(&self) -> Self {
        Self {
            gap_us: self.gap_us,
            max_us: self.max_us,
            ..Self::new(0, None)
        }
    }

    /// Adds an open session read back from storage.
    pub fn restore(&mut self, partition: Vec<u8>, start: i64, end: i64, key: Vec<u8>) {
        self.by_end.insert((end, partition.clone(), start));
        self.open
            .entry(partition)
            .or_default()
            .insert(start, Open { end, key });
    }

    /// Adds a partition's last closed end read back from storage.
    pub fn restore_closed(&mut self, partition: Vec<u8>, end: i64) {
        self.closed_by_end.insert((end, partition.clone()));
        self.closed.insert(partition, end);
    }

    /// Whether any partition has a closed session that could still make an event late.
    pub fn has_closed(&self) -> bool {
        !self.closed.is_empty()
    }

    /// Whether an event of `partition` at `time` falls inside or before a closed session.
    pub fn falls_in_closed(&self, partition: &[u8], time: i64) -> bool {
        self.closed.get(partition).is_some_and(|&end| time < end)
    }

    /// Places an epoch's atoms, given as their partitions and times (µs), in sessions.
    pub fn place(&mut self, partitions: &[Vec<u8>], times: &[i64]) -> Placement {
        let mut spans = vec![(0, 0); times.len()];
        let mut changed = Vec::new();
        let mut by_partition: HashMap<&[u8], Vec<usize>> = HashMap::new();
        for (atom, partition) in partitions.iter().enumerate() {
            by_partition.entry(partition).or_default().push(atom);
        }
        for (partition, mut atoms) in by_partition {
            atoms.sort_unstable_by_key(|&a| times[a]);
            let sessions = self.open.entry(partition.to_vec()).or_default();
            // Sessions this epoch made or changed, by start; the others stay in `sessions`.
            let mut forming: BTreeMap<i64, Forming> = BTreeMap::new();
            for atom in atoms {
                let t = times[atom];
                let mut start = t;
                let mut session = Forming {
                    end: t + self.gap_us,
                    absorbed: Vec::new(),
                    atoms: vec![atom],
                };
                // The session before `t` takes it if it ends after it; those after, if they
                // start within a gap of it (as many as its growing end reaches: a bridge).
                let before = |s: i64, forming: &BTreeMap<i64, Forming>| {
                    let stored = sessions.range(..=s).next_back().map(|(&k, o)| (k, o.end));
                    let made = forming.range(..=s).next_back().map(|(&k, f)| (k, f.end));
                    [stored, made]
                        .into_iter()
                        .flatten()
                        .max_by_key(|&(k, _)| k)
                        .filter(|&(_, e)| e > s)
                };
                if let Some((k, _)) = before(start, &forming) {
                    start = k;
                    absorb(sessions, &mut forming, k, &mut session);
                }
                loop {
                    let stored = sessions.range(start + 1..).next().map(|(&k, _)| k);
                    let made = forming.range(start + 1..).next().map(|(&k, _)| k);
                    match [stored, made].into_iter().flatten().min() {
                        Some(k) if k < session.end => {
                            absorb(sessions, &mut forming, k, &mut session)
                        }
                        _ => break,
                    }
                }
                forming.insert(start, session);
            }
            for (start, session) in forming {
                for &atom in &session.atoms {
                    spans[atom] = (start, session.end);
                }
                for (old_start, old_end, _) in &session.absorbed {
                    self.by_end
                        .remove(&(*old_end, partition.to_vec(), *old_start));
                }
                self.by_end.insert((session.end, partition.to_vec(), start));
                sessions.insert(
                    start,
                    Open {
                        end: session.end,
                        key: Vec::new(),
                    },
                );
                changed.push(Changed {
                    atom: session.atoms[0],
                    replaces: session.absorbed.into_iter().map(|(_, _, k)| k).collect(),
                    partition: partition.to_vec(),
                    start,
                });
            }
        }
        Placement { spans, changed }
    }

    /// The start and end of the open session of `partition` that holds `time`.
    pub fn span_of(&self, partition: &[u8], time: i64) -> Option<(i64, i64)> {
        let (&start, open) = self.open.get(partition)?.range(..=time).next_back()?;
        (time < open.end).then_some((start, open.end))
    }

    /// Gives a session made or changed by [`Self::place`] its group key.
    pub fn set_key(&mut self, partition: &[u8], start: i64, key: Vec<u8>) {
        if let Some(open) = self
            .open
            .get_mut(partition)
            .and_then(|sessions| sessions.get_mut(&start))
        {
            open.key = key;
        }
    }

    /// Closes the sessions whose end the watermark has reached, and forgets the closed ends
    /// no accepted event can fall before any more (a gap behind the watermark). Returns the
    /// keys of the sessions closed.
    pub fn close(&mut self, watermark: i64) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        while let Some((end, partition, start)) = self.by_end.first().cloned() {
            if end > watermark {
                break;
            }
            self.by_end.pop_first();
            if let Some(sessions) = self.open.get_mut(&partition) {
                if let Some(open) = sessions.remove(&start) {
                    keys.push(open.key);
                }
                if sessions.is_empty() {
                    self.open.remove(&partition);
                }
            }
            self.drop_atoms(&partition, start, end);
            if self.closed.get(&partition).is_none_or(|&e| e < end) {
                if let Some(old) = self.closed.insert(partition.clone(), end) {
                    self.closed_by_end.remove(&(old, partition.clone()));
                }
                self.closed_by_end.insert((end, partition.clone()));
                self.closed_changes.push((partition, Some(end)));
            }
        }
        let horizon = watermark.saturating_sub(self.gap_us);
        while let Some((end, partition)) = self.closed_by_end.first().cloned() {
            if end > horizon {
                break;
            }
            self.closed_by_end.pop_first();
            self.closed.remove(&partition);
            self.closed_changes.push((partition, None));
        }
        keys
    }

    /// The changes to partitions' closed ends since the last call, to store with the epoch.
    pub fn take_closed_changes(&mut self) -> Vec<(Vec<u8>, Option<i64>)> {
        std::mem::take(&mut self.closed_changes)
    }

    /// Open sessions, and partitions with a closed end kept.
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        (self.by_end.len(), self.closed.len())
    }
}

/// Moves the session starting at `start` (stored or forming) into `into`.
fn absorb(
    sessions: &mut BTreeMap<i64, Open>,
    forming: &mut BTreeMap<i64, Forming>,
    start: i64,
    into: &mut Forming,
) {
    if let Some(made) = forming.remove(&start) {
        into.end = into.end.max(made.end);
        into.absorbed.extend(made.absorbed);
        into.atoms.extend(made.atoms);
    } else if let Some(stored) = sessions.remove(&start) {
        into.end = into.end.max(stored.end);
        into.absorbed.push((start, stored.end, stored.key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    /// Places atoms of one partition at `times` (seconds), keys each changed session by its
    /// start and end, and returns the spans (seconds) and what each change replaced.
    fn place(index: &mut SessionIndex, times: &[f64]) -> (Vec<(f64, f64)>, Vec<Vec<String>>) {
        let micros: Vec<i64> = times
            .iter()
            .map(|t| (t * S as f64).round() as i64)
            .collect();
        let placement = index.place(&vec![b"u".to_vec(); times.len()], &micros);
        let mut replaced = Vec::new();
        for change in &placement.changed {
            let (start, end) = placement.spans[change.atom];
            index.set_key(b"u", change.start, format!("{start}-{end}").into_bytes());
            replaced.push(
                change
                    .replaces
                    .iter()
                    .map(|k| String::from_utf8(k.clone()).unwrap())
                    .collect(),
            );
        }
        let seconds = |us: i64| us as f64 / S as f64;
        (
            placement
                .spans
                .iter()
                .map(|&(s, e)| (seconds(s), seconds(e)))
                .collect(),
            replaced,
        )
    }

    #[test]
    fn a_late_event_bridges_two_sessions_into_one() {
        let mut index = SessionIndex::new(3_000, None);
        // The golden walk of docs/views.md: gap 3 s.
        let (spans, _) = place(&mut index, &[1.0, 2.0]);
        assert_eq!(spans, [(1.0, 5.0), (1.0, 5.0)]);
        let (spans, replaced) = place(&mut index, &[4.5]);
        assert_eq!(spans, [(1.0, 7.5)], "4.5 extends the session");
        assert_eq!(replaced, [vec!["1000000-5000000".to_string()]]);
        let (spans, replaced) = place(&mut index, &[8.5]);
        assert_eq!(
            spans,
            [(8.5, 11.5)],
            "more than a gap after 4.5: a session of its own"
        );
        assert!(replaced[0].is_empty());
        let (spans, replaced) = place(&mut index, &[7.0]);
        assert_eq!(
            spans,
            [(1.0, 11.5)],
            "7.0 is within a gap of 4.5 and of 8.5"
        );
        assert_eq!(
            replaced,
            [vec![
                "1000000-7500000".to_string(),
                "8500000-11500000".to_string()
            ]]
        );
        assert_eq!(index.counts(), (1, 0));
    }

    #[test]
    fn events_exactly_a_gap_apart_are_two_sessions() {
        let mut index = SessionIndex::new(3_000, None);
        let (spans, _) = place(&mut index, &[10.0, 7.0, 13.0]);
        assert_eq!(spans, [(10.0, 13.0), (7.0, 10.0), (13.0, 16.0)]);
        // One epoch's atoms in any order form the same sessions as one at a time.
        let mut index = SessionIndex::new(3_000, None);
        let (spans, _) = place(&mut index, &[12.0, 1.0, 7.0, 3.5, 9.5]);
        assert_eq!(
            spans,
            [
                (7.0, 15.0),
                (1.0, 6.5),
                (7.0, 15.0),
                (1.0, 6.5),
                (7.0, 15.0)
            ]
        );
        let mut one_by_one = SessionIndex::new(3_000, None);
        for t in [12.0, 1.0, 7.0, 3.5] {
            place(&mut one_by_one, &[t]);
        }
        assert_eq!(place(&mut one_by_one, &[9.5]).0, [(7.0, 15.0)]);
    }

    #[test]
    fn closing_keeps_the_closed_end_while_it_can_make_an_event_late() {
        let mut index = SessionIndex::new(3_000, None);
        place(&mut index, &[1.0, 20.0]);
        assert_eq!(index.close(3_900_000), Vec::<Vec<u8>>::new());
        assert_eq!(
            index.close(4 * S),
            vec![b"1000000-4000000".to_vec()],
            "the watermark reached its end"
        );
        assert!(index.falls_in_closed(b"u", 3_900_000));
        assert!(!index.falls_in_closed(b"u", 4_000_000), "a gap after: new");
        assert!(!index.falls_in_closed(b"v", 0), "another partition");
        assert_eq!(
            index.take_closed_changes(),
            [(b"u".to_vec(), Some(4_000_000))]
        );
        index.close(7 * S);
        assert!(
            !index.has_closed(),
            "a gap past its end, nothing can fall in it"
        );
        assert_eq!(index.take_closed_changes(), [(b"u".to_vec(), None)]);
        assert_eq!(index.counts(), (1, 0));
    }
}
