//! Cuts of a stream: dropping an uncommitted tail ([`Journal::truncate_after`]) and
//! dropping a head that a snapshot covers ([`Journal::purge_upto`]).
//!
//! Why: a replicated log (Raft) needs both. A follower whose uncommitted entries conflict
//! with the leader's drops them; a node that took a snapshot drops the entries it covers.
//! Product and directory streams are never cut.
//!
//! A cut goes into sled as one atomic batch and into the write-ahead log as an entry of
//! its own ([`Cut`]), so that recovery repeats it in order with the records around it: a
//! tail dropped is not brought back by the log it was appended through. Both wait until
//! the cut is durable before they return. A purged stream keeps, in its index entry, the
//! tip its last purged record ended at, so the chain goes on from it.

use crate::error::JournalError;
use crate::journal::Journal;
use crate::keys::Cut;
use crate::lock::lock;
use crate::tip::StreamTip;
use crate::tree_cut::apply_cut;
use slotpool_events::StreamId;

impl Journal {
    /// Removes every record of `stream` after sequence `after` and returns the tip to
    /// append at next. Returns once the cut is durable. Fails, changing nothing, when
    /// `after` is beyond the stream's end or before what was purged.
    pub fn truncate_after(&self, stream: &StreamId, after: u64) -> Result<StreamTip, JournalError> {
        self.check_failed()?;
        let name = stream.name();
        let first = self.first_tip(stream)?;
        let out_of_range = |what: &str| JournalError::OutOfRange {
            stream: name.clone(),
            sequence: after,
            what: what.into(),
        };
        let next = after
            .checked_add(1)
            .ok_or_else(|| out_of_range("it is beyond the stream's end"))?;
        if next < first.next_sequence {
            return Err(out_of_range("it was purged"));
        }
        let tip = if next == first.next_sequence {
            first
        } else {
            let last_hash = self
                .record_hash(stream, after)?
                .ok_or_else(|| out_of_range("it is beyond the stream's end"))?;
            StreamTip {
                next_sequence: next,
                last_hash,
            }
        };
        self.cut(&name, &Cut::Truncate { after }, after)?;
        Ok(tip)
    }

    /// Removes every record of `stream` up to and including `upto` (a snapshot covers
    /// them); the records after it keep their sequences and their chain. Returns once the
    /// cut is durable. Purging what was purged already changes nothing; `upto` beyond the
    /// stream's end is refused.
    pub fn purge_upto(&self, stream: &StreamId, upto: u64) -> Result<(), JournalError> {
        self.check_failed()?;
        let name = stream.name();
        if upto < self.first_tip(stream)?.next_sequence {
            return Ok(());
        }
        let last_hash =
            self.record_hash(stream, upto)?
                .ok_or_else(|| JournalError::OutOfRange {
                    stream: name.clone(),
                    sequence: upto,
                    what: "it is beyond the stream's end".into(),
                })?;
        let tip = StreamTip {
            next_sequence: upto + 1,
            last_hash,
        };
        let last = self.last_sequence(stream)?;
        self.cut(&name, &Cut::Purge { tip }, last)
    }

    /// Applies `cut` to sled and the next group's frame, then waits until it is durable;
    /// the stream then ends at `last`.
    ///
    /// The watermark is lowered, in its file too, before sled changes: sled may make the
    /// cut durable on its own before the log does, and a crash then must not find a
    /// stream that ends before a watermark the cut made wrong. A watermark that is low
    /// (the cut did not survive after all) only weakens the check.
    pub(crate) fn cut(&self, name: &str, cut: &Cut, last: u64) -> Result<(), JournalError> {
        let ticket = {
            let _moving = lock(&self.inner.compactor.moving);
            self.settled()?;
            let version = self.inner.watermark.set(name, last);
            let path = &self.inner.path;
            self.inner
                .watermark
                .lower_in_file(path, name, last, version);
            apply_cut(&self.inner.tree, name, cut)?;
            let (key, value) = cut.entry(name);
            self.inner
                .commit
                .add_to_frame(std::iter::once((&key[..], &value[..])))
        };
        self.wait_durable(ticket)
    }
}
