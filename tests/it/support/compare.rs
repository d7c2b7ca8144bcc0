//! Comparing splitdns with dnsmasq question by question: fake upstreams that log what they
//! receive ([`Witness`]), one question at a time to each server, and the outcome of each
//! (which upstream received it, the response code and the answer records). Used by the
//! differential tests of rule lines (differential.rs) and of whole imported configs
//! (import_differential.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

use super::client::{decode, encode, query};
use super::name;
use super::witness::Witness;

/// How long a question waits for its answer before the outcome is "no answer".
const ANSWER_WAIT: Duration = Duration::from_secs(3);
/// The placeholder of the default upstream (`server=IP` in dnsmasq, `[upstream] servers`).
pub(crate) const DEFAULT: &str = "internet";

/// What one server did with one question.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The upstreams (a group of fakes by its first fake) that received it.
    pub(crate) asked: BTreeSet<String>,
    /// `None` when no answer came.
    pub(crate) rcode: Option<ResponseCode>,
    /// The answer section as `TYPE DATA`, sorted.
    pub(crate) answers: BTreeSet<String>,
}

impl Outcome {
    /// Not forwarded, answered with `rcode` and no records.
    fn local(rcode: ResponseCode) -> Self {
        Self {
            asked: BTreeSet::new(),
            rcode: Some(rcode),
            answers: BTreeSet::new(),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let asked: Vec<&str> = self.asked.iter().map(String::as_str).collect();
        match asked.as_slice() {
            [] => write!(f, "not forwarded")?,
            asked => write!(f, "sent to {}", asked.join(" and "))?,
        }
        match self.rcode {
            Some(rcode) => write!(f, ", {rcode}")?,
            None => write!(f, ", no answer")?,
        }
        for answer in &self.answers {
            write!(f, ", {answer}")?;
        }
        Ok(())
    }
}

/// Whether dnsmasq's `theirs` and splitdns's `ours` differ only as a name that exists
/// does: dnsmasq's "not forwarded, NXDOMAIN" beside splitdns's "not forwarded, NOERROR, no
/// records" (RFC 1034 §4.3.2, RFC 8020 §2).
pub(crate) fn nodata_instead_of_nxdomain(theirs: &Outcome, ours: &Outcome) -> bool {
    *theirs == Outcome::local(ResponseCode::NXDomain)
        && *ours == Outcome::local(ResponseCode::NoError)
}

/// Whether dnsmasq's `theirs` forwarded a question that splitdns's `ours` answered itself
/// with no records: types of a name dnsmasq forwards but splitdns keeps home, as
/// docs/migrating.md lists them (`domain_needed` and `bogus_priv` for every type, a name
/// with local records for its other types).
pub(crate) fn kept_home_instead_of_forwarded(theirs: &Outcome, ours: &Outcome) -> bool {
    !theirs.asked.is_empty()
        && ours.asked.is_empty()
        && ours.answers.is_empty()
        && ours.rcode.is_some()
}

/// The fake upstreams of a comparison, by placeholder.
pub(crate) struct Fakes {
    pub(crate) by_name: BTreeMap<String, Witness>,
}

impl Fakes {
    /// One witness per name in `names`, plus the default upstream. Fakes of one group of
    /// `together` count as one upstream and share their answers, so the answer does not
    /// tell them apart either; fakes in `silent` never answer (they still log).
    pub(crate) async fn start(
        names: impl IntoIterator<Item = String>,
        together: &[&[&str]],
        silent: &[&str],
    ) -> Self {
        let mut names: BTreeSet<String> = names.into_iter().collect();
        names.insert(DEFAULT.to_string());
        let group_of = |fake: &str| -> String {
            together
                .iter()
                .find(|group| group.contains(&fake))
                .map_or(fake, |group| group[0])
                .to_string()
        };
        let groups: BTreeSet<String> = names.iter().map(|n| group_of(n)).collect();
        let mut by_name = BTreeMap::new();
        for fake in names {
            let group = group_of(&fake);
            let number = groups.iter().position(|g| *g == group).unwrap() + 1;
            let witness = Witness::start(&group, u8::try_from(number).unwrap()).await;
            if silent.contains(&fake.as_str()) {
                witness.silence();
            }
            by_name.insert(fake, witness);
        }
        Self { by_name }
    }

    /// `text` with every `{NAME}` replaced by that fake's `127.0.0.1#PORT`.
    pub(crate) fn render(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (fake, witness) in &self.by_name {
            let addr = witness.addr();
            text = text.replace(
                &format!("{{{fake}}}"),
                &format!("{}#{}", addr.ip(), addr.port()),
            );
        }
        assert!(
            placeholders(&text).is_empty(),
            "unfilled placeholder: {text}"
        );
        text
    }

    pub(crate) fn default_upstream(&self) -> SocketAddr {
        self.by_name[DEFAULT].addr()
    }

    /// `NAME = ADDR, ...` for a failure message.
    pub(crate) fn describe(&self) -> String {
        self.by_name
            .iter()
            .map(|(fake, w)| format!("{fake} = {}", w.addr()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Asks `server` and returns what happened: which fakes received the question (as
    /// the same name in any case, and the same type) and what came back.
    pub(crate) async fn outcome(
        &self,
        server: SocketAddr,
        qname: &str,
        qtype: RecordType,
    ) -> Outcome {
        let before: Vec<usize> = self.by_name.values().map(Witness::len).collect();
        let reply = ask(server, qname, qtype).await;
        let wanted = name(qname).to_lowercase();
        let mut asked = BTreeSet::new();
        for (witness, from) in self.by_name.values().zip(before) {
            witness.settle().await;
            let received = witness.since(from);
            if received
                .iter()
                .any(|(n, t)| n.to_lowercase() == wanted && *t == qtype)
            {
                asked.insert(witness.label().to_string());
            }
        }
        let answers = reply
            .iter()
            .flat_map(|m| &m.answers)
            .map(|r| format!("{} {}", r.record_type(), r.data))
            .collect();
        Outcome {
            asked,
            rcode: reply.map(|m| m.metadata.response_code),
            answers,
        }
    }

    /// Asks dnsmasq (`theirs`) and splitdns (`ours`) every question and returns each one
    /// whose outcomes differ, described. On the names in `nodata` dnsmasq's NXDOMAIN may be
    /// splitdns's NODATA (see [`nodata_instead_of_nxdomain`]), on those in `kept_home` a
    /// question dnsmasq forwards may be answered by splitdns itself with no records (see
    /// [`kept_home_instead_of_forwarded`]), and each listed name must show its difference
    /// at least once, so a list that no longer matches fails too.
    pub(crate) async fn differences(
        &self,
        theirs: SocketAddr,
        ours: SocketAddr,
        questions: &[(String, RecordType)],
        nodata: &[&str],
        kept_home: &[&str],
    ) -> Vec<String> {
        let mut differences = Vec::new();
        let mut nodata_seen = BTreeSet::new();
        for (qname, qtype) in questions {
            let dnsmasq = self.outcome(theirs, qname, *qtype).await;
            let splitdns = self.outcome(ours, qname, *qtype).await;
            let listed = |list: &[&str]| list.contains(&qname.as_str());
            if (listed(nodata) && nodata_instead_of_nxdomain(&dnsmasq, &splitdns))
                || (listed(kept_home) && kept_home_instead_of_forwarded(&dnsmasq, &splitdns))
            {
                nodata_seen.insert(qname.as_str());
            } else if dnsmasq != splitdns {
                differences.push(format!(
                    "  {qname} {qtype}\n    dnsmasq:  {dnsmasq}\n    splitdns: {splitdns}"
                ));
            }
        }
        for qname in nodata.iter().chain(kept_home) {
            assert!(
                questions.iter().any(|(n, _)| n == qname),
                "{qname} is listed but never asked"
            );
            if !nodata_seen.contains(qname) {
                differences.push(format!(
                    "  {qname} (listed in nodata or kept_home)\n    no question shows the \
                     listed difference"
                ));
            }
        }
        differences
    }
}

/// `{word}` placeholders in a text.
pub(crate) fn placeholders(text: &str) -> Vec<String> {
    text.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}'))
        .map(|(inner, _)| inner)
        .filter(|inner| {
            !inner.is_empty() && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

/// One query over UDP; `None` when no answer comes in [`ANSWER_WAIT`].
async fn ask(server: SocketAddr, qname: &str, qtype: RecordType) -> Option<Message> {
    let msg = query(qname, qtype);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&encode(&msg), server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let wait = async {
        loop {
            let (len, from) = sock.recv_from(&mut buf).await.unwrap();
            if from == server && len >= 2 && buf[..2] == msg.metadata.id.to_be_bytes() {
                return decode(&buf[..len]);
            }
        }
    };
    tokio::time::timeout(ANSWER_WAIT, wait).await.ok()
}
