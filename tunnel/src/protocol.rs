//! The wire protocol between agent, tunnel server and the controller's CONNECT requests.
//!
//! 1. The agent dials the server over TLS and sends an HTTP/1.1 upgrade request
//!    (`GET /tunnel/v1/agent`, `Upgrade: cellfed-tunnel/v1`, `Authorization: Bearer TOKEN`,
//!    `Cellfed-Cluster: NAME`). The server answers `101 Switching Protocols`, or 401/403/400
//!    with a one-line reason.
//! 2. On the upgraded connection the roles reverse: the server is the HTTP/2 *client*, the agent
//!    the HTTP/2 *server*. HTTP/2 does the framing: one stream per proxied connection, per-stream
//!    flow control, PING keepalives.
//! 3. Each CONNECT the controller sends to the proxy becomes one HTTP/2 `CONNECT` stream towards
//!    the agent, which dials its member apiserver and answers 200, or 502 with
//!    [`ERROR_HEADER`] naming why.
//!
//! Everything here but [`keepalive`] is pure: names, headers and parsing, unit-tested below.

use base64::Engine as _;

/// Path of the agent's upgrade request.
pub const AGENT_PATH: &str = "/tunnel/v1/agent";
/// The `Upgrade` protocol token.
pub const UPGRADE_PROTOCOL: &str = "cellfed-tunnel/v1";
/// Header naming the cluster an agent serves.
pub const CLUSTER_HEADER: &str = "cellfed-cluster";
/// Header naming why a CONNECT or an agent handshake failed (a [`Reason`]).
pub const ERROR_HEADER: &str = "cellfed-tunnel-error";
/// DNS suffix of tunnel host names: cluster `member1` is reached as `member1.cluster.internal`
/// unless its token names another host. `.internal` is reserved for private use and never
/// resolves on the public internet.
pub const TUNNEL_DOMAIN: &str = "cluster.internal";
/// HTTP/2 flow-control window of one stream (both sides): large enough that a LIST of
/// megabytes is not paced by window updates.
pub const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
/// Largest HTTP/2 DATA frame either side accepts: one splice buffer ([`crate::splice::COPY_BUFFER`])
/// travels as one frame, not four of the default 16 KiB.
pub const MAX_FRAME_SIZE: u32 = 64 * 1024;
/// HTTP/2 flow-control window of the whole agent connection.
pub const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;
/// Concurrent streams an agent accepts on its connection.
pub const MAX_STREAMS: u32 = 1000;
/// Realm of the proxy's `Proxy-Authenticate` challenge.
pub const PROXY_REALM: &str = "cellfed-tunnel";

/// Why the tunnel refused or failed something; sent in [`ERROR_HEADER`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No agent of the cluster is connected (or no cluster owns the host).
    TunnelDisconnected,
    /// The agent is connected but could not reach its member apiserver.
    MemberUnreachable,
    /// Credentials missing or wrong.
    Unauthorized,
    /// The token is valid but not for the cluster named.
    Forbidden,
    /// The request is malformed (bad cluster name, bad CONNECT target).
    BadRequest,
}

impl Reason {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TunnelDisconnected => "TunnelDisconnected",
            Reason::MemberUnreachable => "MemberUnreachable",
            Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::BadRequest => "BadRequest",
        }
    }

    /// Parses a header value.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Reason::TunnelDisconnected,
            Reason::MemberUnreachable,
            Reason::Unauthorized,
            Reason::Forbidden,
            Reason::BadRequest,
        ]
        .into_iter()
        .find(|r| r.as_str() == s.trim())
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sends an HTTP/2 PING every `interval` (while the connection's task polls the connection);
/// returns why the connection is dead when a PING is not answered within `timeout`.
pub async fn keepalive(
    mut pings: h2::PingPong,
    interval: std::time::Duration,
    timeout: std::time::Duration,
) -> String {
    loop {
        tokio::time::sleep(interval).await;
        match tokio::time::timeout(timeout, pings.ping(h2::Ping::opaque())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return format!("keepalive PING failed: {e}"),
            Err(_) => return format!("keepalive PING not answered within {timeout:?}"),
        }
    }
}

/// The default tunnel host of a cluster: `<cluster>.cluster.internal`.
pub fn default_tunnel_host(cluster: &str) -> String {
    format!("{cluster}.{TUNNEL_DOMAIN}")
}

/// Whether `name` is a valid cluster name (a DNS-1123 subdomain, as KubeFedCluster names are).
pub fn valid_cluster_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A CONNECT target `host:port`, the host lower-cased (IPv6 without brackets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// Parses a CONNECT request target (authority form, `host:port`; the port is required as in
/// RFC 9110 §9.3.6).
pub fn parse_target(authority: &str) -> Option<Target> {
    let authority: http::uri::Authority = authority.parse().ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let port = authority.port_u16()?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    (!host.is_empty()).then_some(Target { host, port })
}

/// `host:port` of a URL such as `https://10.0.0.1:6443` or `https://kubernetes.default.svc`
/// (default port from the scheme), for dialling.
pub fn dial_address(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    let host = uri.host()?;
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("http") => 80,
        _ => 443,
    });
    Some(if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// The token of an `Authorization: Bearer TOKEN` header.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The secret of a `Proxy-Authorization` header: a bearer token, or the password of basic
/// credentials (any user name), which is what a client sends for a proxy URL with user info
/// (`http://cellfed:TOKEN@tunnel:8132`, KubeFed's way).
pub fn proxy_secret(value: &str) -> Option<String> {
    if let Some(t) = bearer_token(value) {
        return Some(t.to_string());
    }
    let (scheme, creds) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(creds.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (_, password) = decoded.split_once(':')?;
    (!password.is_empty()).then(|| password.to_string())
}

/// A `Proxy-Authorization: Basic` value for `user:password`.
pub fn basic_credentials(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip() {
        for r in [
            Reason::TunnelDisconnected,
            Reason::MemberUnreachable,
            Reason::Unauthorized,
            Reason::Forbidden,
            Reason::BadRequest,
        ] {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(Reason::parse("nope"), None);
    }

    #[test]
    fn cluster_names_are_dns_subdomains() {
        assert!(valid_cluster_name("member1"));
        assert!(valid_cluster_name("rz00a.shop"));
        assert!(!valid_cluster_name(""));
        assert!(!valid_cluster_name("Member1"));
        assert!(!valid_cluster_name("-a"));
        assert!(!valid_cluster_name("a..b"));
        assert!(!valid_cluster_name("a/b"));
        assert!(!valid_cluster_name(&"a".repeat(64)));
    }

    #[test]
    fn connect_targets_need_host_and_port() {
        assert_eq!(
            parse_target("Member1.Cluster.Internal:6443"),
            Some(Target {
                host: "member1.cluster.internal".into(),
                port: 6443
            })
        );
        assert_eq!(
            parse_target("[::1]:443"),
            Some(Target {
                host: "::1".into(),
                port: 443
            })
        );
        assert_eq!(parse_target("member1.cluster.internal"), None);
        assert_eq!(parse_target("user:pw@host:1"), None);
        assert_eq!(parse_target("/path"), None);
    }

    #[test]
    fn dial_addresses_default_the_port() {
        assert_eq!(
            dial_address("https://127.0.0.1:7001").as_deref(),
            Some("127.0.0.1:7001")
        );
        assert_eq!(
            dial_address("https://kubernetes.default.svc").as_deref(),
            Some("kubernetes.default.svc:443")
        );
        assert_eq!(
            dial_address("https://[::1]:6443").as_deref(),
            Some("[::1]:6443")
        );
        assert_eq!(dial_address("not a url"), None);
    }

    #[test]
    fn credentials_parse() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(proxy_secret("Bearer t1").as_deref(), Some("t1"));
        assert_eq!(
            proxy_secret(&basic_credentials("cellfed", "t2")).as_deref(),
            Some("t2")
        );
        assert_eq!(proxy_secret(&basic_credentials("cellfed", "")), None);
        assert_eq!(proxy_secret("Basic !!!"), None);
        assert_eq!(proxy_secret("Digest x"), None);
    }

    #[test]
    fn default_hosts() {
        assert_eq!(default_tunnel_host("member1"), "member1.cluster.internal");
    }
}
