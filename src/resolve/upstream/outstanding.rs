//! The queries outstanding at one server over UDP: each has an ID no other
//! query in flight at that server has (RFC 5452 §9.2 wants it random, and a
//! reply is matched to its query by it), and `loops` looks a query that came
//! back to us up here.

use std::sync::Mutex;

use hashbrown::HashMap;

use crate::dns::question::Question;

/// The queries outstanding at one server over UDP, by ID, with their question
/// (lowercased name, type and class).
#[derive(Default)]
pub(super) struct OutstandingIds(Mutex<HashMap<u16, Box<[u8]>>>);

impl OutstandingIds {
    /// Takes a random ID no query in flight at this server has, for `ask`.
    pub(super) fn register(&self, ask: &Question) -> Outstanding<'_> {
        let mut question = Vec::with_capacity(ask.lower.as_bytes().len() + 4);
        question.extend_from_slice(ask.lower.as_bytes());
        question.extend_from_slice(&ask.qtype.to_be_bytes());
        question.extend_from_slice(&ask.qclass.to_be_bytes());
        let mut table = self.0.lock().expect("in-flight table lock");
        let id = loop {
            let id: u16 = rand::random();
            if !table.contains_key(&id) {
                break id;
            }
        };
        table.insert(id, question.into());
        Outstanding { table: self, id }
    }

    /// Whether a query with this ID and question (lowercased name, type and
    /// class) is outstanding here.
    pub(super) fn contains(&self, id: u16, question: &[u8]) -> bool {
        let table = self.0.lock().expect("in-flight table lock");
        table.get(&id).is_some_and(|q| **q == *question)
    }
}

/// A query's entry in its server's [`OutstandingIds`], removed however the
/// wait ends.
pub(super) struct Outstanding<'a> {
    table: &'a OutstandingIds,
    pub(super) id: u16,
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        let mut table = self.table.0.lock().expect("in-flight table lock");
        table.remove(&self.id);
    }
}
