//! The Consul mirror (`[consul]`) against the fake agent: answers from the watched catalog
//! compared with the agent's own DNS answers, changes, and faults.
