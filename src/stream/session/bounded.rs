//! Sessions with a max_duration: an event `max_duration` or more after its session's start
//! starts the next one. Then sessions do not only grow and merge: an event that arrives out
//! of order can move where every later session of its run of events starts (a run: events
//! less than a gap apart). With `max_duration` 10 s and a gap of 3 s, events at 5, 7, ..., 15
//! make sessions [5, 15) and [15, 18); an event at 3 makes them [3, 13) and [13, 18), and
//! the event at 13 changes sessions. So a bounded view keeps a state per *atom* (partition
//! and time, as the partial query aggregates them), and a session whose events changed other
//! than by new atoms joining it is formed again from its atoms' states.
//!
//! What makes this cheap in the common case: a session's events are fixed by its start
//! alone (those from it until `max_duration` later or the run's end), and atoms only come.
//! So a session that keeps its start only gains atoms; if the atoms it gained are all new in
//! this epoch, their partial states merge into its state as in an unbounded view.

use std::collections::BTreeMap;

use datafusion::common::{HashMap, HashSet};

use super::{Open, SessionIndex};

/// What placing an epoch's atoms in bounded sessions changed.
#[derive(Debug, Default)]
pub struct Reshaped {
    /// Per atom: its session's start and end (µs).
    pub spans: Vec<(i64, i64)>,
    /// Per atom: whether its session is formed again from its atoms (whose states then hold
    /// the atom's partial state: it is not merged into the session's).
    pub rebuilt_atom: Vec<bool>,
    /// The sessions formed again from their atoms.
    pub rebuilt: Vec<Rebuilt>,
    /// The keys of sessions that are no more: their start no longer starts a session.
    pub removed: Vec<Vec<u8>>,
    /// The partitions and starts of `rebuilt`.
    rebuilt_starts: HashSet<(Vec<u8>, i64)>,
}

/// A session to form again from its atoms' states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// Its partition.
    pub partition: Vec<u8>,
    /// Its start and end (µs).
    pub start: i64,
    pub end: i64,
    /// Its atoms' keys, in time order.
    pub atoms: Vec<Vec<u8>>,
}

impl Reshaped {
    /// Whether the session of `partition` starting at `start` is formed again.
    pub fn is_rebuilt(&self, partition: &[u8], start: i64) -> bool {
        self.rebuilt_starts.contains(&(partition.to_vec(), start))
    }
}

impl SessionIndex {
    /// Adds an atom of an open session read back from storage.
    pub fn restore_atom(&mut self, partition: Vec<u8>, time: i64, key: Vec<u8>) {
        self.atoms.entry(partition).or_default().insert(time, key);
    }

    /// The keys of the atoms of the sessions closed since the last call: their states go.
    pub fn take_dropped_atoms(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.dropped_atoms)
    }

    /// Forgets the atoms of a closed session.
    pub(super) fn drop_atoms(&mut self, partition: &[u8], start: i64, end: i64) {
        let Some(atoms) = self.atoms.get_mut(partition) else {
            return;
        };
        let times: Vec<i64> = atoms.range(start..end).map(|(&t, _)| t).collect();
        for time in times {
            if let Some(key) = atoms.remove(&time) {
                self.dropped_atoms.push(key);
            }
        }
        if atoms.is_empty() {
            self.atoms.remove(partition);
        }
    }

    /// Places an epoch's atoms (their partitions, times in µs and keys) in bounded sessions:
    /// each partition they touch is divided into sessions again over all its open atoms.
    pub fn reshape(
        &mut self,
        partitions: &[Vec<u8>],
        times: &[i64],
        atom_keys: &[Vec<u8>],
    ) -> Reshaped {
        let max_us = self.max_us.unwrap_or(i64::MAX);
        let mut reshaped = Reshaped {
            spans: vec![(0, 0); times.len()],
            rebuilt_atom: vec![false; times.len()],
            ..Reshaped::default()
        };
        let mut by_partition: HashMap<&[u8], Vec<usize>> = HashMap::new();
        for (atom, partition) in partitions.iter().enumerate() {
            by_partition.entry(partition).or_default().push(atom);
        }
        for (partition, epoch_atoms) in by_partition {
            let atoms = self.atoms.entry(partition.to_vec()).or_default();
            // Times with atoms from this epoch, and which of them are new.
            let mut in_epoch: HashMap<i64, Vec<usize>> = HashMap::new();
            let mut new = HashSet::new();
            for atom in epoch_atoms {
                let t = times[atom];
                in_epoch.entry(t).or_default().push(atom);
                if atoms.insert(t, atom_keys[atom].clone()).is_none() {
                    new.insert(t);
                }
            }
            let old = self.open.remove(partition).unwrap_or_default();
            for (&start, session) in &old {
                self.by_end
                    .remove(&(session.end, partition.to_vec(), start));
            }
            let mut sessions = BTreeMap::new();
            for (start, members) in divide(atoms.keys(), self.gap_us, max_us) {
                let last = *members.last().expect("a session has an atom");
                let end = last
                    .saturating_add(self.gap_us)
                    .min(start.saturating_add(max_us));
                let kept = old.get(&start);
                // The same start: it holds the atoms it held, and gained those new ones that
                // are in it. If it gained older atoms too, they come with their states.
                let grew_by_new = kept.is_some_and(|session| {
                    members.iter().all(|t| new.contains(t) || *t < session.end)
                });
                let epoch_members = members.iter().filter_map(|t| in_epoch.get(t)).flatten();
                for &atom in epoch_members {
                    reshaped.spans[atom] = (start, end);
                    reshaped.rebuilt_atom[atom] = !grew_by_new;
                }
                if !grew_by_new {
                    reshaped.rebuilt_starts.insert((partition.to_vec(), start));
                    reshaped.rebuilt.push(Rebuilt {
                        partition: partition.to_vec(),
                        start,
                        end,
                        atoms: members.iter().map(|t| atoms[t].clone()).collect(),
                    });
                }
                let key = kept.map(|session| session.key.clone()).unwrap_or_default();
                sessions.insert(start, Open { end, key });
                self.by_end.insert((end, partition.to_vec(), start));
            }
            reshaped.removed.extend(
                old.into_iter()
                    .filter(|(start, _)| !sessions.contains_key(start))
                    .map(|(_, session)| session.key),
            );
            self.open.insert(partition.to_vec(), sessions);
        }
        reshaped
    }
}

/// The sessions of one partition's atoms (at `times`, in order): each session's start and
/// its atoms' times.
fn divide<'a>(
    times: impl IntoIterator<Item = &'a i64>,
    gap_us: i64,
    max_us: i64,
) -> Vec<(i64, Vec<i64>)> {
    let mut sessions: Vec<(i64, Vec<i64>)> = Vec::new();
    for &t in times {
        match sessions.last_mut() {
            Some((start, members))
                if t - members.last().copied().unwrap_or(*start) < gap_us
                    && t - *start < max_us =>
            {
                members.push(t);
            }
            _ => sessions.push((t, vec![t])),
        }
    }
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000;

    /// Places atoms of partition "u" at `times` (ms; an atom's key is its time) in sessions
    /// of gap 3 s and max_duration 10 s; keys each session by its start, and returns the
    /// spans (ms), the starts of the sessions formed again and the keys removed.
    fn reshape(index: &mut SessionIndex, times: &[i64]) -> (Vec<(i64, i64)>, Vec<i64>, Vec<i64>) {
        let micros: Vec<i64> = times.iter().map(|t| t * MS).collect();
        let keys: Vec<Vec<u8>> = times.iter().map(|t| t.to_be_bytes().to_vec()).collect();
        let reshaped = index.reshape(&vec![b"u".to_vec(); times.len()], &micros, &keys);
        for (start, session) in index.open.get_mut(&b"u".to_vec()).unwrap() {
            session.key = (start / MS).to_be_bytes().to_vec();
        }
        (
            reshaped
                .spans
                .iter()
                .map(|&(s, e)| (s / MS, e / MS))
                .collect(),
            reshaped.rebuilt.iter().map(|r| r.start / MS).collect(),
            reshaped.removed.iter().map(|k| ms(k)).collect(),
        )
    }

    fn ms(key: &[u8]) -> i64 {
        i64::from_be_bytes(key[..8].try_into().unwrap())
    }

    fn bounded() -> SessionIndex {
        SessionIndex::new(3_000, Some(10_000))
    }

    #[test]
    fn an_early_event_moves_the_start_of_every_later_session_of_its_run() {
        let mut index = bounded();
        let (spans, rebuilt, _) = reshape(&mut index, &[5000, 7000, 9000, 11000, 13000, 15000]);
        assert_eq!(
            spans[5],
            (15000, 18000),
            "max_duration after 5 s: a new session"
        );
        assert_eq!(
            spans[0],
            (5000, 15000),
            "ends at start + max_duration, before last + gap"
        );
        assert_eq!(
            rebuilt,
            [5000, 15000],
            "new sessions are formed from their atoms"
        );
        // 3 s starts the run: its sessions now start at 3 s and 13 s.
        let (spans, rebuilt, removed) = reshape(&mut index, &[3000]);
        assert_eq!(spans, [(3000, 13000)]);
        assert_eq!(rebuilt, [3000, 13000]);
        assert_eq!(
            removed,
            [5000, 15000],
            "no session starts at 5 s or 15 s any more"
        );
        // 17 s joins the session of 13 s, which held only old atoms: it grows in place.
        let (spans, rebuilt, removed) = reshape(&mut index, &[17000]);
        assert_eq!(
            (spans, rebuilt, removed),
            (vec![(13000, 20000)], vec![], vec![])
        );
    }

    #[test]
    fn a_late_event_after_a_sessions_end_takes_the_start_of_the_next() {
        let mut index = bounded();
        // [0, 10 s) holds 0..8 s; 10.5 s starts the next (less than a gap after 8 s, but
        // max_duration after 0); 20 s starts one by the gap.
        reshape(
            &mut index,
            &[0, 2000, 4000, 6000, 8000, 10500, 12000, 13000, 20000, 22000],
        );
        assert_eq!(
            reshape(&mut index, &[12500]).0,
            [(10500, 16000)],
            "grows in place"
        );
        // 10.2 s falls after [0, 10 s) ends and before 10.5 s: it starts that session
        // instead; the session of 20 s is unchanged.
        let (spans, rebuilt, removed) = reshape(&mut index, &[10200]);
        assert_eq!(spans, [(10200, 16000)]);
        assert_eq!((rebuilt, removed), (vec![10200], vec![10500]));
    }

    #[test]
    fn closing_a_session_drops_its_atoms() {
        let mut index = bounded();
        reshape(&mut index, &[0, 2000, 4000, 6000, 8000, 10000, 12000]);
        let closed = index.close(10_000 * MS);
        assert_eq!(closed, [0i64.to_be_bytes().to_vec()]);
        let dropped: Vec<i64> = index.take_dropped_atoms().iter().map(|k| ms(k)).collect();
        assert_eq!(dropped, [0, 2000, 4000, 6000, 8000]);
        assert!(index.falls_in_closed(b"u", 9_000 * MS));
        // The rest divide as before, from 10 s.
        assert_eq!(reshape(&mut index, &[14000]).0, [(10000, 17000)]);
    }
}
