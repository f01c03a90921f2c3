//! A client for an OpenAI-compatible `/v1/chat/completions` server on the user's own machine or
//! network (Ollama, llama.cpp's server, LM Studio, vLLM, an exo cluster), with streaming.
//!
//! Plain HTTP/1.1 over the standard library's `TcpStream`: the only host ever contacted is the
//! one in the configured URL, and no HTTP stack is pulled into the build.
//!
//! # Who may receive the prompts
//!
//! Prompts carry the user's documents, and the request may carry an API key, both in clear
//! text. So the host name is resolved first and **every** address it resolves to is checked
//! ([`reach`], [`check_addresses`]) before anything is sent; the connection then goes only to
//! those checked addresses (a second lookup could answer differently):
//!
//! - loopback (`127.0.0.0/8`, `::1`, `localhost`): allowed;
//! - a private network (`10/8`, `172.16/12`, `192.168/16`, `100.64/10`, link-local, `fc00::/7`;
//!   `.local` names resolve to these): allowed only with
//!   [`RemoteOptions::allow_private_network`] (`[llm] allow_private_network = true`), since
//!   everyone on that network can read the traffic;
//! - anything else (the public internet): refused, with a hint to reach a distant server through
//!   an SSH tunnel (`ssh -L 8080:localhost:8080 host`, then `url = "http://127.0.0.1:8080/v1"`),
//!   which encrypts the traffic and checks the server's identity.
//!
//! The API key therefore never reaches a non-loopback host without the opt-in, and neither
//! [`RemoteOptions`] nor [`RemoteGenerator`] prints it through `Debug`.
//!
//! # Bounded replies
//!
//! A hostile or broken server cannot hold docent or exhaust its memory: connecting has a
//! timeout, silence has a limit ([`RemoteOptions::idle_timeout`]), the whole request has a
//! deadline ([`RemoteOptions::deadline`], which also catches a server that trickles bytes or
//! streams forever), the response head is at most [`MAX_HEAD_BYTES`], one line of the event
//! stream at most [`RemoteOptions::max_line_bytes`], and a reply in one piece at most
//! [`RemoteOptions::max_body_bytes`].
//!
//! # Why not `https://`
//!
//! `https://` URLs are refused with the tunnel hint. A TLS client was weighed: rustls 0.23 with
//! ring is already in docent's dependency graph (LanceDB pulls it in through reqwest), so the
//! binary would compile little more. But public hosts are refused anyway (documents stay on the
//! user's machines), and servers on a home or office network speak plain HTTP or use self-signed
//! certificates, so TLS here would mostly mean certificate-trust settings to get right, plus a
//! second transport path for the bounds above in the one crate that talks to the network, for
//! less than an SSH tunnel already gives (encryption and an authenticated host). It also keeps
//! this crate free of C and assembly builds (ring), so it builds and tests in seconds.
//!
//! Token counts: the server's tokenizer is not known here, so [`RemoteGenerator`] estimates
//! generously (one token per three bytes, more than real tokenizers use for prose) so that the
//! packed prompt stays inside the configured context.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use docent_core::{ChatMessage, GenerationStats, Generator, SamplingParams, SeamError, StopReason};
use serde_json::{Value, json};

/// What can go wrong talking to the server. Every message names the URL.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{url}: {message}")]
    BadUrl { url: String, message: String },
    #[error(
        "cannot reach {url}: {source}\nhint: is the server running and listening on the network (Ollama: OLLAMA_HOST=0.0.0.0)?"
    )]
    Connect { url: String, source: io::Error },
    #[error("{url}: {source}")]
    Io { url: String, source: io::Error },
    #[error("{url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url}: {message}")]
    Protocol { url: String, message: String },
    /// The host is not one docent may send prompts to (see the crate documentation).
    #[error("{url}: {message}")]
    Refused { url: String, message: String },
}

/// Most bytes of a response's status line and headers together.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header lines in a response.
const MAX_HEADERS: usize = 128;
/// Most bytes of a chunk-size line (the size and any extensions).
const MAX_CHUNK_LINE: usize = 1024;
/// Most bytes of an error response read for its message.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// Where an address is, as far as sending documents to it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// This machine.
    Loopback,
    /// A private or link-local network (RFC 1918, shared address space, `fc00::/7`,
    /// `fe80::/10`).
    Private,
    /// Anything else: the public internet (and unspecified, broadcast or multicast addresses).
    Public,
}

/// Which of the three an address is.
pub fn reach(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Reach::Loopback
            } else if v4.is_private()
                || v4.is_link_local()
                // Shared address space (100.64.0.0/10): carrier-grade NAT, Tailscale.
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
            {
                Reach::Private
            } else {
                Reach::Public
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                return Reach::Loopback;
            }
            if let Some(v4) = v6.to_ipv4_mapped() {
                return reach(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 {
                Reach::Private
            } else {
                Reach::Public
            }
        }
    }
}

/// The hint shown whenever a host is refused.
const TUNNEL_HINT: &str = "hint: reach a distant server through an SSH tunnel, which encrypts the traffic: `ssh -L 8080:localhost:8080 <host>`, then url = \"http://127.0.0.1:8080/v1\"";

/// The policy on every address a host resolved to: `Ok` only when each one is loopback, or
/// private with `allow_private_network`. The message says which address failed and why.
pub fn check_addresses(addrs: &[IpAddr], allow_private_network: bool) -> Result<(), String> {
    if addrs.is_empty() {
        return Err("the host has no address".into());
    }
    for &ip in addrs {
        match reach(ip) {
            Reach::Loopback => {}
            Reach::Private if allow_private_network => {}
            Reach::Private => {
                return Err(format!(
                    "{ip} is on a private network, and prompts (which carry your documents) and any API key would cross it unencrypted; docent talks only to this machine unless you allow it\nhint: if you trust that network, set `[llm] allow_private_network = true`; otherwise use an SSH tunnel: `ssh -L 8080:localhost:8080 <host>`, then url = \"http://127.0.0.1:8080/v1\""
                ));
            }
            Reach::Public => {
                return Err(format!(
                    "{ip} is on the public internet; docent never sends your documents there in clear text\n{TUNNEL_HINT}"
                ));
            }
        }
    }
    Ok(())
}

/// How to reach the server. `Debug` shows whether an API key is set, never the key.
#[derive(Clone)]
pub struct RemoteOptions {
    /// Base URL such as `http://192.168.1.20:11434/v1`, or the full `/chat/completions` URL.
    pub url: String,
    /// The model name the server knows (`qwen3:14b`).
    pub model: String,
    /// Sent as a bearer token when set.
    pub api_key: Option<String>,
    /// The context the server runs the model with, for prompt packing.
    pub context_length: usize,
    pub connect_timeout: Duration,
    /// Longest silence while waiting for the answer (a large model's prefill can take minutes).
    pub idle_timeout: Duration,
    /// Longest a whole request may take, from connecting to the last byte of the answer.
    pub deadline: Duration,
    /// Allow a server on a private network (otherwise only loopback); see the crate docs.
    pub allow_private_network: bool,
    /// Most bytes of one line of a streamed answer.
    pub max_line_bytes: usize,
    /// Most bytes of an answer sent in one piece.
    pub max_body_bytes: usize,
}

impl RemoteOptions {
    pub fn new(url: impl Into<String>, model: impl Into<String>) -> Self {
        RemoteOptions {
            url: url.into(),
            model: model.into(),
            api_key: None,
            context_length: 8192,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            deadline: Duration::from_secs(600),
            allow_private_network: false,
            max_line_bytes: 1024 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
        }
    }
}

impl std::fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("context_length", &self.context_length)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("deadline", &self.deadline)
            .field("allow_private_network", &self.allow_private_network)
            .field("max_line_bytes", &self.max_line_bytes)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Endpoint {
    host: String,
    port: u16,
    path: String,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Self, RemoteError> {
        let bad = |m: &str| RemoteError::BadUrl {
            url: url.to_string(),
            message: m.to_string(),
        };
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err(bad(
                "https is not supported; use the server's plain http address on your network, or an SSH tunnel (ssh -L 8080:localhost:8080 host) and http://localhost:8080/v1",
            ));
        } else {
            return Err(bad(
                "expected an http:// URL such as http://192.168.1.20:11434/v1",
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad(
                "credentials in the URL are not supported; set the API key variable instead",
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed [ in the host"))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host in the URL"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad(&format!("`{p}` is not a port number")))?,
            None => 80,
        };
        let mut path = path.trim_end_matches('/').to_string();
        if path.is_empty() {
            path = "/v1".into();
        }
        if !path.ends_with("/chat/completions") {
            path.push_str("/chat/completions");
        }
        Ok(Endpoint { host, port, path })
    }

    fn host_header(&self) -> String {
        let h = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            h
        } else {
            format!("{h}:{}", self.port)
        }
    }
}

/// A chat model served over the network.
pub struct RemoteGenerator {
    opts: RemoteOptions,
    endpoint: Endpoint,
    model_id: String,
}

impl std::fmt::Debug for RemoteGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteGenerator")
            .field("url", &self.opts.url)
            .field("model", &self.opts.model)
            .finish_non_exhaustive()
    }
}

impl RemoteGenerator {
    /// Checks the URL; nothing is contacted until the first answer.
    pub fn new(opts: RemoteOptions) -> Result<Self, RemoteError> {
        let endpoint = Endpoint::parse(&opts.url)?;
        if opts.model.trim().is_empty() {
            return Err(RemoteError::BadUrl {
                url: opts.url.clone(),
                message: "no model name for the server (`[llm] remote_model`)".into(),
            });
        }
        // An address written in the URL is checked at once; names are checked when resolved.
        if let Ok(ip) = endpoint.host.parse::<IpAddr>() {
            check_addresses(&[ip], opts.allow_private_network).map_err(|message| {
                RemoteError::Refused {
                    url: opts.url.clone(),
                    message,
                }
            })?;
        }
        let model_id = format!("{} at {}", opts.model, endpoint.host_header());
        Ok(RemoteGenerator {
            opts,
            endpoint,
            model_id,
        })
    }

    fn url(&self) -> String {
        format!(
            "http://{}{}",
            self.endpoint.host_header(),
            self.endpoint.path
        )
    }

    fn body(&self, messages: &[ChatMessage], p: &SamplingParams) -> Value {
        let mut body = json!({
            "model": self.opts.model,
            "messages": messages
                .iter()
                .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
                .collect::<Vec<_>>(),
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "seed": p.seed,
        });
        if let Some(top_p) = p.top_p {
            body["top_p"] = json!(top_p);
        }
        // Not in OpenAI's API, but understood by llama.cpp, vLLM and LM Studio; others ignore it.
        if let Some(k) = p.top_k {
            body["top_k"] = json!(k);
        }
        body
    }

    /// Resolves the host and checks every address it has against the policy; the connection
    /// goes only to these addresses.
    fn addresses(&self, url: &str) -> Result<Vec<SocketAddr>, RemoteError> {
        let addrs: Vec<SocketAddr> = (self.endpoint.host.as_str(), self.endpoint.port)
            .to_socket_addrs()
            .map_err(|source| RemoteError::Connect {
                url: url.to_string(),
                source,
            })?
            .collect();
        let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
        check_addresses(&ips, self.opts.allow_private_network).map_err(|message| {
            RemoteError::Refused {
                url: url.to_string(),
                message: format!("{} resolves to {message}", self.endpoint.host),
            }
        })?;
        Ok(addrs)
    }

    /// Sends the request; returns the response's status, headers and body reader.
    fn send<'a>(&self, body: &Value, cancel: &'a AtomicBool) -> Result<Response<'a>, RemoteError> {
        let url = self.url();
        let deadline = Instant::now() + self.opts.deadline;
        let io_err = |source| RemoteError::Io {
            url: url.clone(),
            source,
        };
        let addrs = self.addresses(&url)?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.opts.connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let stream = stream.ok_or_else(|| RemoteError::Connect {
            url: url.clone(),
            source: last,
        })?;
        stream.set_nodelay(true).map_err(io_err)?;
        stream
            .set_write_timeout(Some(self.opts.idle_timeout.max(Duration::from_millis(1))))
            .map_err(io_err)?;
        let payload = serde_json::to_vec(body).map_err(|e| RemoteError::Protocol {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: docent/{}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.endpoint.path,
            self.endpoint.host_header(),
            env!("CARGO_PKG_VERSION"),
            payload.len()
        );
        if let Some(key) = &self.opts.api_key {
            head.push_str(&format!("Authorization: Bearer {key}\r\n"));
        }
        head.push_str("\r\n");
        let mut writer = &stream;
        writer.write_all(head.as_bytes()).map_err(io_err)?;
        writer.write_all(&payload).map_err(io_err)?;
        writer.flush().map_err(io_err)?;
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(io_err)?;

        let mut r = BufReader::new(Patient {
            stream,
            cancel,
            idle: self.opts.idle_timeout,
            deadline,
            limit: self.opts.deadline,
        });
        let mut head_bytes = 0usize;
        let mut head_line = |r: &mut BufReader<Patient<'a>>| -> io::Result<String> {
            let line = read_line(r, MAX_HEAD_BYTES - head_bytes.min(MAX_HEAD_BYTES))
                .map_err(|e| head_too_long(e, "the response head"))?;
            head_bytes += line.len() + 2;
            Ok(line)
        };
        let status_line = head_line(&mut r).map_err(io_err)?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|_| status_line.starts_with("HTTP/1."))
            .ok_or_else(|| RemoteError::Protocol {
                url: url.clone(),
                message: format!("not an HTTP response: {:?}", truncate(&status_line, 80)),
            })?;
        let mut headers = Vec::new();
        loop {
            let line = head_line(&mut r).map_err(io_err)?;
            if line.is_empty() {
                break;
            }
            if headers.len() == MAX_HEADERS {
                return Err(RemoteError::Protocol {
                    url: url.clone(),
                    message: format!("more than {MAX_HEADERS} header lines"),
                });
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        Ok((status, headers, r))
    }
}

/// A response's status, headers (lower-case names) and the reader positioned at its body.
type Response<'a> = (u16, Vec<(String, String)>, BufReader<Patient<'a>>);

/// A socket read that waits patiently: it retries the short read timeouts (checking the cancel
/// flag between them) until data comes, the peer closes, the user cancels, the server has been
/// silent for `idle`, or the request's `deadline` has passed (however the bytes trickle in).
struct Patient<'a> {
    stream: TcpStream,
    cancel: &'a AtomicBool,
    idle: Duration,
    deadline: Instant,
    /// The deadline as a duration, for the message.
    limit: Duration,
}

const CANCELLED: &str = "cancelled";

impl Read for Patient<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let since = Instant::now();
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(io::Error::other(CANCELLED));
            }
            if Instant::now() >= self.deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no complete answer within {} s (the request's deadline)",
                        self.limit.as_secs()
                    ),
                ));
            }
            match self.stream.read(buf) {
                Ok(n) => return Ok(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if since.elapsed() >= self.idle {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no answer for {} s", self.idle.as_secs()),
                        ));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn is_cancel(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Other && e.to_string() == CANCELLED
}

/// A line of at most `max` bytes, without its CR LF; `None` at the end of the stream. A longer
/// line is an error ([`io::ErrorKind::InvalidData`]) after reading at most `max` + 2 bytes of
/// it, so a line that never ends costs no more memory than a long one.
fn next_line<R: BufRead>(r: &mut R, max: usize) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    loop {
        let available = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            if buf.is_empty() {
                return Ok(None);
            }
            break;
        }
        let (used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if buf.len() + used > max.saturating_add(2) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{LINE_TOO_LONG} {max} bytes"),
            ));
        }
        buf.extend_from_slice(&available[..used]);
        r.consume(used);
        if done {
            break;
        }
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

const LINE_TOO_LONG: &str = "a line longer than";

/// An over-long line in `what` said as such.
fn head_too_long(e: io::Error, what: &str) -> io::Error {
    if e.kind() == io::ErrorKind::InvalidData && e.to_string().starts_with(LINE_TOO_LONG) {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} is longer than {MAX_HEAD_BYTES} bytes"),
        )
    } else {
        e
    }
}

/// A line that must be there (HTTP head, chunk framing), of at most `max` bytes.
fn read_line<R: BufRead>(r: &mut R, max: usize) -> io::Result<String> {
    next_line(r, max)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection early",
        )
    })
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A response body: chunked, of known length, or until the connection closes.
struct Body<R> {
    inner: R,
    mode: Mode,
}

enum Mode {
    Chunked { left: usize, done: bool },
    Length(u64),
    Close,
}

impl<R: BufRead> Body<R> {
    fn new(inner: R, headers: &[(String, String)]) -> Self {
        let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        let mode = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            Mode::Chunked {
                left: 0,
                done: false,
            }
        } else if let Some(n) = header("content-length").and_then(|v| v.parse().ok()) {
            Mode::Length(n)
        } else {
            Mode::Close
        };
        Body { inner, mode }
    }
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.mode {
            Mode::Close => self.inner.read(buf),
            Mode::Length(left) => {
                if *left == 0 {
                    return Ok(0);
                }
                let want = buf.len().min(*left as usize);
                let n = self.inner.read(&mut buf[..want])?;
                *left -= n as u64;
                Ok(n)
            }
            Mode::Chunked { left, done } => {
                if *done {
                    return Ok(0);
                }
                if *left == 0 {
                    let line = read_line(&mut self.inner, MAX_CHUNK_LINE)?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size, 16).map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("bad chunk size {:?}", truncate(&line, 20)),
                        )
                    })?;
                    if size == 0 {
                        *done = true;
                        return Ok(0);
                    }
                    *left = size;
                }
                let want = buf.len().min(*left);
                let n = self.inner.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed inside a chunk",
                    ));
                }
                *left -= n;
                if *left == 0 {
                    read_line(&mut self.inner, MAX_CHUNK_LINE)?; // the CR LF after the chunk
                }
                Ok(n)
            }
        }
    }
}

/// The error message in an error response body (`{"error": {"message": …}}` or
/// `{"error": "…"}`), else the body's start.
fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        if let Some(m) = v["error"]["message"].as_str() {
            return m.to_string();
        }
        if let Some(m) = v["error"].as_str() {
            return m.to_string();
        }
    }
    let t = truncate(body.trim(), 300);
    if t.is_empty() {
        "no details".into()
    } else {
        t.to_string()
    }
}

fn finish(reason: Option<&str>) -> Option<StopReason> {
    match reason? {
        "length" => Some(StopReason::MaxTokens),
        _ => Some(StopReason::EndOfTurn),
    }
}

impl Generator for RemoteGenerator {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn context_length(&self) -> usize {
        self.opts.context_length
    }

    fn count_tokens(&self, text: &str) -> usize {
        text.len().div_ceil(3)
    }

    fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<usize, SeamError> {
        // Each message costs its text plus a few tokens of chat format.
        Ok(messages
            .iter()
            .map(|m| self.count_tokens(&m.content) + 6)
            .sum::<usize>()
            + 4)
    }

    fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &SamplingParams,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<GenerationStats, SeamError> {
        let seam = |e: RemoteError| SeamError::with_source(e.to_string(), e);
        let url = self.url();
        let start = Instant::now();
        let estimated_prompt = self.prompt_tokens(messages)?;
        let (status, headers, reader) = self
            .send(&self.body(messages, params), cancel)
            .map_err(seam)?;
        let mut body = BufReader::new(Body::new(reader, &headers));
        let io_err = |source: io::Error| {
            seam(RemoteError::Io {
                url: url.clone(),
                source,
            })
        };
        if !(200..300).contains(&status) {
            let mut text = String::new();
            let _ = body.by_ref().take(MAX_ERROR_BODY).read_to_string(&mut text);
            return Err(seam(RemoteError::Status {
                url: url.clone(),
                status,
                message: error_message(&text),
            }));
        }
        let content_type = headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.to_ascii_lowercase())
            .unwrap_or_default();

        let mut first: Option<Instant> = None;
        let mut pieces = 0usize;
        let mut usage: Option<(usize, usize)> = None;
        let mut stop: Option<StopReason> = None;
        let mut emit = |text: &str, first: &mut Option<Instant>| {
            if !text.is_empty() {
                first.get_or_insert_with(Instant::now);
                pieces += 1;
                on_text(text);
            }
        };
        let read_usage = |v: &Value| {
            Some((
                v["usage"]["prompt_tokens"].as_u64()? as usize,
                v["usage"]["completion_tokens"].as_u64()? as usize,
            ))
        };

        if content_type.contains("application/json") {
            // A server that does not stream answers in one piece, of bounded size.
            let max = self.opts.max_body_bytes;
            let too_big = || {
                seam(RemoteError::Protocol {
                    url: url.clone(),
                    message: format!("the answer is larger than {max} bytes"),
                })
            };
            let announced = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse::<u64>().ok());
            if announced.is_some_and(|n| n > max as u64) {
                return Err(too_big());
            }
            let mut raw = Vec::new();
            match body.by_ref().take(max as u64 + 1).read_to_end(&mut raw) {
                Ok(_) => {}
                Err(e) if is_cancel(&e) => stop = Some(StopReason::Cancelled),
                Err(e) => return Err(io_err(e)),
            }
            if raw.len() > max {
                return Err(too_big());
            }
            let text = String::from_utf8_lossy(&raw);
            if stop.is_none() {
                let v: Value = serde_json::from_str(&text).map_err(|e| {
                    seam(RemoteError::Protocol {
                        url: url.clone(),
                        message: format!("the answer is not JSON: {e}"),
                    })
                })?;
                let choice = &v["choices"][0];
                emit(
                    choice["message"]["content"].as_str().unwrap_or(""),
                    &mut first,
                );
                stop = finish(choice["finish_reason"].as_str());
                usage = read_usage(&v);
            }
        } else {
            // Server-sent events: `data: {json}` lines, ending with `data: [DONE]`.
            loop {
                let line = match next_line(&mut body, self.opts.max_line_bytes) {
                    Ok(Some(l)) => l,
                    Ok(None) => break,
                    Err(e) if is_cancel(&e) => {
                        stop = Some(StopReason::Cancelled);
                        break;
                    }
                    Err(e) => return Err(io_err(e)),
                };
                let Some(data) = line.strip_prefix("data:") else {
                    continue; // blank separators, comments, `event:` and `id:` lines
                };
                let data = data.trim();
                if data == "[DONE]" {
                    break;
                }
                let v: Value = serde_json::from_str(data).map_err(|e| {
                    seam(RemoteError::Protocol {
                        url: url.clone(),
                        message: format!("bad event {:?}: {e}", truncate(data, 80)),
                    })
                })?;
                if v.get("error").is_some() {
                    return Err(seam(RemoteError::Status {
                        url: url.clone(),
                        status,
                        message: error_message(data),
                    }));
                }
                if let Some(choice) = v["choices"].get(0) {
                    emit(
                        choice["delta"]["content"].as_str().unwrap_or(""),
                        &mut first,
                    );
                    if let Some(s) = finish(choice["finish_reason"].as_str()) {
                        stop = Some(s);
                    }
                }
                if let Some(u) = read_usage(&v) {
                    usage = Some(u);
                }
                if cancel.load(Ordering::Relaxed) {
                    stop = Some(StopReason::Cancelled);
                    break;
                }
            }
        }
        let end = Instant::now();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let ttft = first.map_or(ms(end - start), |f| ms(f - start));
        let (prompt_tokens, generated_tokens) = usage.unwrap_or((estimated_prompt, pieces));
        Ok(GenerationStats {
            prompt_tokens,
            generated_tokens,
            ttft_ms: ttft,
            prefill_ms: ttft,
            decode_ms: first.map_or(0.0, |f| ms(end - f)),
            stop: stop.unwrap_or(StopReason::EndOfTurn),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = Endpoint::parse("http://192.168.1.20:11434/v1").unwrap();
        assert_eq!(
            e,
            Endpoint {
                host: "192.168.1.20".into(),
                port: 11434,
                path: "/v1/chat/completions".into()
            }
        );
        assert_eq!(
            Endpoint::parse("http://mac-mini.local/").unwrap().path,
            "/v1/chat/completions"
        );
        assert_eq!(
            Endpoint::parse("http://h:8080/v1/chat/completions/")
                .unwrap()
                .path,
            "/v1/chat/completions"
        );
        let v6 = Endpoint::parse("http://[::1]:8080/v1").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 8080));
        assert_eq!(v6.host_header(), "[::1]:8080");
        for bad in [
            "https://h/v1",
            "ftp://h",
            "h:8080",
            "http://:80/v1",
            "http://h:99999/v1",
            "http://u:p@h/v1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        let err = Endpoint::parse("https://h/v1").unwrap_err().to_string();
        assert!(
            err.contains("https://h/v1") && err.contains("tunnel"),
            "{err}"
        );
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let raw = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        let headers = vec![("transfer-encoding".to_string(), "chunked".to_string())];
        let mut out = String::new();
        Body::new(&raw[..], &headers)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello, world");

        let bad = b"zz\r\nhello\r\n";
        let mut out = String::new();
        assert!(
            Body::new(&bad[..], &headers)
                .read_to_string(&mut out)
                .is_err()
        );
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn addresses_are_loopback_private_or_public() {
        for (ip, want) in [
            ("127.0.0.1", Reach::Loopback),
            ("127.8.9.10", Reach::Loopback),
            ("::1", Reach::Loopback),
            ("::ffff:127.0.0.1", Reach::Loopback),
            ("10.1.2.3", Reach::Private),
            ("172.16.0.1", Reach::Private),
            ("172.31.255.255", Reach::Private),
            ("192.168.1.5", Reach::Private),
            ("169.254.10.20", Reach::Private),
            ("100.101.102.103", Reach::Private),
            ("fd12:3456::1", Reach::Private),
            ("fe80::1", Reach::Private),
            ("::ffff:192.168.1.5", Reach::Private),
            ("8.8.8.8", Reach::Public),
            ("172.32.0.1", Reach::Public),
            ("100.128.0.1", Reach::Public),
            ("0.0.0.0", Reach::Public),
            ("2001:4860:4860::8888", Reach::Public),
            ("::ffff:8.8.8.8", Reach::Public),
        ] {
            assert_eq!(reach(ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[test]
    fn host_policy() {
        assert!(check_addresses(&ips(&["127.0.0.1", "::1"]), false).is_ok());
        let err = check_addresses(&ips(&["192.168.1.5"]), false).unwrap_err();
        assert!(err.contains("allow_private_network"), "{err}");
        assert!(check_addresses(&ips(&["192.168.1.5"]), true).is_ok());
        for allow in [false, true] {
            let err = check_addresses(&ips(&["8.8.8.8"]), allow).unwrap_err();
            assert!(err.contains("ssh -L 8080:localhost:8080"), "{err}");
            assert!(err.contains("hint:"), "{err}");
            // One public address among loopback ones is enough to refuse the name.
            assert!(check_addresses(&ips(&["127.0.0.1", "8.8.8.8"]), allow).is_err());
        }
        assert!(check_addresses(&[], true).is_err());
    }

    #[test]
    fn localhost_is_allowed() {
        // Resolving `localhost` reads the hosts file; nothing is contacted.
        let addrs: Vec<IpAddr> = ("localhost", 80)
            .to_socket_addrs()
            .unwrap()
            .map(|a| a.ip())
            .collect();
        assert!(check_addresses(&addrs, false).is_ok(), "{addrs:?}");
    }

    #[test]
    fn addresses_in_the_url_are_checked_before_anything_is_sent() {
        // `new` contacts nothing; the policy decides on the written address alone.
        let err = RemoteGenerator::new(RemoteOptions::new("http://8.8.8.8:11434/v1", "m"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("http://8.8.8.8:11434/v1"), "{err}");
        assert!(
            err.contains("public internet") && err.contains("tunnel"),
            "{err}"
        );
        let lan = RemoteOptions::new("http://192.168.1.5:11434/v1", "m");
        assert!(RemoteGenerator::new(lan.clone()).is_err());
        let mut allowed = lan;
        allowed.allow_private_network = true;
        assert!(RemoteGenerator::new(allowed).is_ok());
        assert!(RemoteGenerator::new(RemoteOptions::new("http://[::1]:8080/v1", "m")).is_ok());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let mut o = RemoteOptions::new("http://127.0.0.1:8080/v1", "m");
        o.api_key = Some("sk-very-secret-123".into());
        let shown = format!("{o:?} {o:#?}");
        assert!(!shown.contains("sk-very-secret-123"), "{shown}");
        assert!(shown.contains("api_key: Some(\"***\")"), "{shown}");
        let g = RemoteGenerator::new(o).unwrap();
        let shown = format!("{g:?} {g:#?}");
        assert!(!shown.contains("sk-very-secret-123"), "{shown}");
    }

    #[test]
    fn lines_are_bounded() {
        let mut r = io::Cursor::new(b"short\r\nexactly10!\nthis one is too long\n".to_vec());
        assert_eq!(next_line(&mut r, 10).unwrap().as_deref(), Some("short"));
        assert_eq!(
            next_line(&mut r, 10).unwrap().as_deref(),
            Some("exactly10!")
        );
        let err = next_line(&mut r, 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // A line that never ends is refused after max + 2 bytes, not read to its end.
        let mut endless = BufReader::with_capacity(4, io::repeat(b'a'));
        assert!(next_line(&mut endless, 1000).is_err());
        assert_eq!(
            next_line(&mut io::Cursor::new(b"".to_vec()), 10).unwrap(),
            None
        );
        assert_eq!(
            next_line(&mut io::Cursor::new(b"no newline".to_vec()), 10)
                .unwrap()
                .as_deref(),
            Some("no newline")
        );
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_message(r#"{"error":{"message":"model 'x' not found","type":"x"}}"#),
            "model 'x' not found"
        );
        assert_eq!(error_message(r#"{"error":"busy"}"#), "busy");
        assert_eq!(error_message(""), "no details");
    }
}
