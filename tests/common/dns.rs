//! An in-process DNS server for integration tests.
//!
//! [`TestDns::start`] binds `127.0.0.1:0` for UDP and then TCP on the same port, and answers
//! every query from a table that the test controls through [`TestDns::set`], also while the
//! server is running. It behaves like a recursive resolver that the test fully controls:
//! CNAME chains are followed inside the table, negative answers carry an SOA record (TTL 1 s)
//! in the authority section, and the RA flag is set. Nothing is ever cached on the server side,
//! so [`TestDns::queries`] counts exactly what the client sent.
//!
//! The server is built on `hickory-server` (`Server` plus a hand-written `RequestHandler`) and
//! stops when the [`TestDns`] is dropped: its listener tasks are cancelled and aborted, which
//! closes both sockets.
//!
//! ```ignore
//! let dns = TestDns::start().await;
//! dns.set("www.example.test", Answer::Addrs(vec!["192.0.2.1".parse().unwrap()]));
//! // point a resolver at dns.addr ...
//! ```

// Every integration-test crate that says `mod common;` compiles this file, and most of them use
// only part of it (or none).
#![allow(dead_code)]

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use hickory_server::{
    Server,
    net::runtime::Time,
    proto::{
        op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode},
        rr::{
            DNSClass, LowerName, Name, RData, Record, RecordType,
            rdata::{A, AAAA, CNAME, SOA},
        },
    },
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    zone_handler::MessageResponseBuilder,
};
use tokio::net::{TcpListener, UdpSocket};

/// TTL, in seconds, of every record the server returns (answers and the negative-answer SOA).
pub const TTL: u32 = 1;

/// Longest CNAME chain the server follows before it answers SERVFAIL.
const MAX_CNAME_CHAIN: usize = 16;

/// What the server answers for one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A/AAAA addresses. An A query gets the IPv4 ones and an AAAA query the IPv6 ones (ANY gets
    /// both); a query for a family with no address here, or for any other type, gets NOERROR with
    /// no records (NODATA).
    Addrs(Vec<IpAddr>),
    /// A CNAME to another name in the table (trailing dot optional). The server follows the chain
    /// like a recursive resolver: the answer holds every CNAME and then the final records. If the
    /// chain ends on a name that is not in the table or is [`Answer::NxDomain`], the reply is
    /// NXDOMAIN with the CNAMEs in the answer section. If it ends on [`Answer::NoData`], or on
    /// addresses of the other family, it is NOERROR with only the CNAMEs. If it ends on
    /// [`Answer::ServFail`] or [`Answer::Refused`], that code is returned with no records; on
    /// [`Answer::Silent`], nothing is sent. A loop or a chain longer than 16 gives SERVFAIL.
    Cname(String),
    /// NXDOMAIN, with an SOA in the authority section. Also what names not in the table get.
    NxDomain,
    /// NOERROR with an empty answer section (NODATA), with an SOA in the authority section.
    NoData,
    /// SERVFAIL, with no records.
    ServFail,
    /// REFUSED, with no records.
    Refused,
    /// No reply at all, over UDP or TCP: the client has to time out. The query is still counted.
    Silent,
}

/// A DNS server on `127.0.0.1` (UDP and TCP, same port) answering from a table; see the
/// [module documentation](self). Dropping it shuts the server down.
pub struct TestDns {
    /// The address to send queries to: `127.0.0.1`, with the port shared by UDP and TCP.
    pub addr: SocketAddr,
    state: Arc<State>,
    server: Server<Handler>,
}

impl TestDns {
    /// Starts a server with an empty table (every name answers NXDOMAIN). It binds
    /// `127.0.0.1:0` for UDP, then TCP on the port the UDP socket got.
    ///
    /// # Panics
    ///
    /// If no port could be found that is free for both UDP and TCP after a few tries.
    pub async fn start() -> TestDns {
        TestDns::start_on(std::net::IpAddr::from([127, 0, 0, 1])).await
    }

    /// [`TestDns::start`] on another address of this network namespace
    /// (for a server that hosts in another namespace reach).
    pub async fn start_on(ip: std::net::IpAddr) -> TestDns {
        let (udp, tcp) = bind_udp_and_tcp(ip).await;
        let addr = udp.local_addr().expect("local address of the UDP socket");
        let state = Arc::new(State::default());
        let mut server = Server::new(Handler {
            state: state.clone(),
        });
        server.register_socket(udp);
        // Idle TCP connections are closed after this long; 32 is the per-connection buffer of
        // pending responses.
        server.register_listener(tcp, Duration::from_secs(5), 32);
        TestDns {
            addr,
            state,
            server,
        }
    }

    /// Sets what the server answers for `name` (like `"www.example.test"`; a trailing dot is
    /// optional, case is ignored), replacing any earlier answer. It applies from the next query.
    ///
    /// # Panics
    ///
    /// If `name`, or the target of an [`Answer::Cname`], is not a valid domain name.
    pub fn set(&self, name: &str, answer: Answer) {
        if let Answer::Cname(target) = &answer {
            fqdn(target);
        }
        let key = LowerName::new(&fqdn(name));
        self.state
            .table
            .lock()
            .expect("DNS table lock")
            .insert(key, answer);
    }

    /// How many DNS messages the server has received so far, over UDP and TCP together,
    /// including the ones it did not answer ([`Answer::Silent`]). A resolver that follows a
    /// CNAME chain itself, or retries, sends more than one per lookup.
    pub fn queries(&self) -> usize {
        self.state.queries.load(Ordering::SeqCst)
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        // Stop the accept/receive loops; dropping `server` right after aborts every task it
        // spawned, including those for open TCP connections, which closes the sockets.
        self.server.shutdown_token().cancel();
    }
}

/// Parses a name as fully qualified, with or without its trailing dot.
fn fqdn(name: &str) -> Name {
    let mut parsed =
        Name::from_ascii(name).unwrap_or_else(|error| panic!("invalid DNS name {name:?}: {error}"));
    parsed.set_fqdn(true);
    parsed
}

/// Binds UDP on `127.0.0.1:0`, then TCP on the same port; retries with a new port if that TCP
/// port happens to be taken.
async fn bind_udp_and_tcp(ip: std::net::IpAddr) -> (UdpSocket, TcpListener) {
    let mut last_error = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .expect("bind UDP on port 0");
        let addr = udp.local_addr().expect("local address of the UDP socket");
        match TcpListener::bind(addr).await {
            Ok(tcp) => return (udp, tcp),
            Err(error) => last_error = Some(error),
        }
    }
    panic!("no port on {ip} free for both UDP and TCP: {last_error:?}");
}

#[derive(Default)]
struct State {
    table: Mutex<HashMap<LowerName, Answer>>,
    queries: AtomicUsize,
}

struct Handler {
    state: Arc<State>,
}

/// What to send back for one query.
enum Reply {
    /// Send nothing.
    Silent,
    /// This response code, no records at all.
    Error(ResponseCode),
    /// This response code (NOERROR or NXDOMAIN) with these answers, plus an SOA in the authority
    /// section when `negative` (NXDOMAIN or NODATA).
    Records {
        code: ResponseCode,
        answers: Vec<Record>,
        negative: bool,
    },
}

impl Handler {
    fn reply(&self, request: &Request) -> Reply {
        if request.metadata.op_code != OpCode::Query {
            return Reply::Error(ResponseCode::NotImp);
        }
        let [query] = request.queries.queries() else {
            return Reply::Error(ResponseCode::FormErr);
        };
        if query.query_class() != DNSClass::IN {
            return Reply::Error(ResponseCode::Refused);
        }
        let qtype = query.query_type();
        let table = self.state.table.lock().expect("DNS table lock");

        // Owner names keep the case the client used (the first one is the query name as sent).
        let mut owner = query.original().name().clone();
        let mut answers = Vec::new();
        let mut seen = HashSet::new();
        loop {
            let key = LowerName::new(&owner);
            if !seen.insert(key.clone()) || seen.len() > MAX_CNAME_CHAIN {
                return Reply::Error(ResponseCode::ServFail);
            }
            let found = match table.get(&key) {
                None | Some(Answer::NxDomain) => {
                    return Reply::Records {
                        code: ResponseCode::NXDomain,
                        answers,
                        negative: true,
                    };
                }
                Some(Answer::NoData) => Vec::new(),
                Some(Answer::ServFail) => return Reply::Error(ResponseCode::ServFail),
                Some(Answer::Refused) => return Reply::Error(ResponseCode::Refused),
                Some(Answer::Silent) => return Reply::Silent,
                Some(Answer::Addrs(addrs)) => addrs
                    .iter()
                    .filter_map(|ip| match (ip, qtype) {
                        (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(*v4))),
                        (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => {
                            Some(RData::AAAA(AAAA(*v6)))
                        }
                        _ => None,
                    })
                    .map(|rdata| Record::from_rdata(owner.clone(), TTL, rdata))
                    .collect(),
                Some(Answer::Cname(target)) => {
                    let target = fqdn(target);
                    answers.push(Record::from_rdata(
                        owner.clone(),
                        TTL,
                        RData::CNAME(CNAME(target.clone())),
                    ));
                    if matches!(qtype, RecordType::CNAME | RecordType::ANY) {
                        // Like a real server, do not chase the CNAME for these types.
                        return Reply::Records {
                            code: ResponseCode::NoError,
                            answers,
                            negative: false,
                        };
                    }
                    owner = target;
                    continue;
                }
            };
            let negative = found.is_empty();
            answers.extend(found);
            return Reply::Records {
                code: ResponseCode::NoError,
                answers,
                negative,
            };
        }
    }

    async fn respond<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        self.state.queries.fetch_add(1, Ordering::SeqCst);
        let reply = self.reply(request);

        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        let fallback = |code| {
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = code;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        };

        // Answer EDNS with EDNS (as hickory's own Catalog does), so that UDP responses may be as
        // large as the client allows; without it they are limited to 512 bytes.
        let edns = request.edns.as_ref().map(|requested| {
            let mut edns = Edns::new();
            edns.set_max_payload(requested.max_payload().max(512));
            edns.set_version(0);
            edns
        });
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());

        let sent = match reply {
            Reply::Silent => return fallback(ResponseCode::NoError),
            Reply::Error(code) => {
                response
                    .send_response(builder.error_msg(&metadata, code))
                    .await
            }
            Reply::Records {
                code,
                answers,
                negative,
            } => {
                metadata.response_code = code;
                let soa = negative.then(|| {
                    // An SOA of the root zone: it gives the client a negative TTL of `TTL`.
                    let soa = SOA::new(
                        fqdn("ns.sitewatch.test"),
                        fqdn("hostmaster.sitewatch.test"),
                        1,
                        3600,
                        600,
                        86400,
                        TTL,
                    );
                    Record::from_rdata(Name::root(), TTL, RData::SOA(soa))
                });
                let response_message = builder.build(
                    metadata,
                    answers.iter(),
                    std::iter::empty(),
                    soa.iter(),
                    std::iter::empty(),
                );
                response.send_response(response_message).await
            }
        };
        sent.unwrap_or_else(|_| fallback(ResponseCode::ServFail))
    }
}

// `RequestHandler` is declared with `#[async_trait]`; this is the expansion of that macro, written
// out so that the tests need no `async-trait` dependency of their own.
impl RequestHandler for Handler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: ResponseHandler + 'async_trait,
        T: Time + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.respond(request, response_handle))
    }
}
