//! The opt-in bounded outbound queue: messages sent while not Open wait
//! here and are flushed in order on [`Action::FlushQueue`](crate::fsm::Action::FlushQueue).
//! The [`Ledger`](super::Ledger) owns it.

use std::collections::VecDeque;

/// What to do with a new message when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Refuse the new message and hand it back to the caller.
    #[default]
    RejectNew,
    /// Accept the new message and evict the oldest queued one, handing the
    /// evicted message back.
    DropOldest,
}

/// A message accepted by [`OutboundQueue::push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Queued<M> {
    /// Queued; nothing was lost.
    Queued,
    /// Queued, and this older message was evicted to make room.
    Evicted(M),
}

/// A message refused by [`OutboundQueue::push`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QueueError<M> {
    /// The queue is full and its policy is [`Overflow::RejectNew`]; the
    /// message is handed back unchanged.
    #[error("outbound queue is full")]
    Full(M),
}

/// A FIFO of at most `capacity` messages with an overflow policy. Never
/// grows past its capacity.
#[derive(Debug, Clone)]
pub(crate) struct OutboundQueue<M> {
    items: VecDeque<M>,
    capacity: usize,
    overflow: Overflow,
}

impl<M> OutboundQueue<M> {
    /// An empty queue; a capacity of 0 accepts nothing.
    pub(crate) fn new(capacity: usize, overflow: Overflow) -> Self {
        Self {
            items: VecDeque::new(),
            capacity,
            overflow,
        }
    }

    /// Queues `message` under the overflow policy.
    pub(crate) fn push(&mut self, message: M) -> Result<Queued<M>, QueueError<M>> {
        if self.items.len() < self.capacity {
            self.items.push_back(message);
            return Ok(Queued::Queued);
        }
        match self.overflow {
            Overflow::RejectNew => Err(QueueError::Full(message)),
            Overflow::DropOldest => match self.items.pop_front() {
                Some(oldest) => {
                    self.items.push_back(message);
                    Ok(Queued::Evicted(oldest))
                }
                // Capacity 0: the new message is itself the oldest.
                None => Err(QueueError::Full(message)),
            },
        }
    }

    /// Takes the oldest message.
    #[cfg(test)]
    pub(crate) fn pop(&mut self) -> Option<M> {
        self.items.pop_front()
    }

    /// Puts a message back at the front (a flush that could not write it).
    /// May exceed the capacity by the messages being re-queued, never more.
    pub(crate) fn push_front(&mut self, message: M) {
        self.items.push_front(message);
    }

    /// Empties the queue, oldest first (to hand unsent messages back on close).
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = M> + '_ {
        self.items.drain(..)
    }

    /// Messages waiting.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_new_keeps_the_old_and_hands_back_the_new() {
        let mut q = OutboundQueue::new(2, Overflow::RejectNew);
        assert_eq!(q.push(1), Ok(Queued::Queued));
        assert_eq!(q.push(2), Ok(Queued::Queued));
        assert_eq!(q.push(3), Err(QueueError::Full(3)));
        assert_eq!(q.drain().collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn drop_oldest_evicts_in_fifo_order() {
        let mut q = OutboundQueue::new(2, Overflow::DropOldest);
        q.push(1).unwrap();
        q.push(2).unwrap();
        assert_eq!(q.push(3), Ok(Queued::Evicted(1)));
        assert_eq!(q.push(4), Ok(Queued::Evicted(2)));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some(3));
        assert_eq!(q.pop(), Some(4));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn zero_capacity_accepts_nothing() {
        let mut q = OutboundQueue::new(0, Overflow::DropOldest);
        assert_eq!(q.push(1), Err(QueueError::Full(1)));
        assert_eq!(q.len(), 0);
    }
}
