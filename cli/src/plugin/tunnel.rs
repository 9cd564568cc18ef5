//! `kubectl cellfed join NAME --via-tunnel`: join a member the federation plane cannot dial.
//! The KubeFedCluster's `apiEndpoint` names the cluster's tunnel host
//! (`NAME.cluster.internal` unless --tunnel-host), its `proxyURL` the tunnel server's CONNECT
//! proxy; the host gets the agent's token (Secret `NAME-tunnel-token`) and the controller's
//! proxy token (Secret `cellfed-tunnel-proxy`, copied into the cluster Secret's `proxyToken`);
//! the member gets the agent's Secret and Deployment, printed for the operator to apply there.

use anyhow::Context as _;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::join::{JoinOptions, MemberAccess};

/// Field manager of the tunnel's objects (apart from join's, so neither removes the other's keys).
const MANAGER: &str = "kubectl-cellfed-tunnel";

/// Name of the agent's Secret and Deployment in the member.
pub const AGENT_NAME: &str = "cellfed-agent";

/// Flags of `join --via-tunnel`.
#[derive(Clone, Debug, clap::Args)]
pub struct TunnelJoinArgs {
    /// Reach the member through `cellfed agent` dialling out to the tunnel server instead of
    /// dialling its apiserver.
    #[arg(long)]
    pub via_tunnel: bool,
    /// The URL agents dial (the tunnel server's agent listener).
    #[arg(
        long,
        default_value = "https://cellfed-tunnel.kube-federation-system.svc:8132"
    )]
    pub tunnel_server_url: String,
    /// The controller's CONNECT proxy, written to spec.proxyURL.
    #[arg(
        long,
        default_value = "http://cellfed-tunnel.kube-federation-system.svc:8131"
    )]
    pub tunnel_proxy_url: String,
    /// Host name the controller CONNECTs to for this cluster (default NAME.cluster.internal);
    /// the member apiserver's certificate must be valid for it.
    #[arg(long)]
    pub tunnel_host: Option<String>,
    /// CA certificate of the tunnel server, put into the agent's Secret.
    #[arg(long)]
    pub tunnel_ca_file: Option<std::path::PathBuf>,
    /// The member apiserver as the agent reaches it from inside the member.
    #[arg(long, default_value = "https://kubernetes.default.svc:443")]
    pub agent_apiserver: String,
    /// Image of the agent's Deployment.
    #[arg(long, default_value = "cellfed:latest")]
    pub agent_image: String,
    /// `yaml`: print only the agent's manifests (for `kubectl --context MEMBER apply -f -`).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// What `join --via-tunnel` needs besides the member's access.
#[derive(Clone, Debug)]
pub struct Tunnel {
    /// URL agents dial.
    pub server_url: String,
    /// The CONNECT proxy (spec.proxyURL).
    pub proxy_url: String,
    /// The tunnel host of the cluster.
    pub host: String,
    /// CA of the tunnel server (PEM), for the agent.
    pub ca_pem: Option<String>,
    /// The member apiserver as the agent reaches it.
    pub agent_apiserver: String,
    /// The agent's image.
    pub image: String,
}

impl Tunnel {
    /// From the flags, for cluster `name`.
    pub fn from_args(args: &TunnelJoinArgs, name: &str) -> anyhow::Result<Self> {
        let ca_pem = args
            .tunnel_ca_file
            .as_ref()
            .map(|p| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())))
            .transpose()?;
        Ok(Self {
            server_url: args.tunnel_server_url.clone(),
            proxy_url: args.tunnel_proxy_url.clone(),
            host: args
                .tunnel_host
                .clone()
                .unwrap_or_else(|| cellfed_tunnel::protocol::default_tunnel_host(name)),
            ca_pem,
            agent_apiserver: args.agent_apiserver.clone(),
            image: args.agent_image.clone(),
        })
    }
}

/// The member's access as the controller sees it through the tunnel: the tunnel host (with the
/// real endpoint's port) behind the proxy (pure).
pub fn tunnelled_access(access: &MemberAccess, tunnel: &Tunnel) -> MemberAccess {
    let port = cellfed_tunnel::protocol::dial_address(&access.endpoint)
        .and_then(|a| a.rsplit_once(':').map(|(_, p)| p.to_string()))
        .unwrap_or_else(|| "443".into());
    MemberAccess {
        endpoint: format!("https://{}:{port}", tunnel.host),
        proxy_url: Some(tunnel.proxy_url.clone()),
        ..access.clone()
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn secret_value(
    secrets: &Api<Secret>,
    name: &str,
    key: &str,
) -> anyhow::Result<Option<String>> {
    Ok(secrets
        .get_opt(name)
        .await?
        .and_then(|s| s.data)
        .and_then(|d| {
            d.get(key)
                .map(|v| String::from_utf8_lossy(&v.0).trim().to_string())
        })
        .filter(|v| !v.is_empty()))
}

/// Ensures the host Secrets of the tunnel — the agent token of `name` (with its host) and the
/// controller's proxy token — and the `proxyToken` key of the cluster Secret `secret_name`;
/// keeps tokens that exist. Returns the agent's token.
pub async fn ensure_tokens(
    host: &kube::Client,
    fed_ns: &str,
    name: &str,
    secret_name: &str,
    tunnel: &Tunnel,
) -> anyhow::Result<String> {
    let secrets: Api<Secret> = Api::namespaced(host.clone(), fed_ns);
    let ssa = PatchParams::apply(MANAGER).force();
    let apply = async |secret: &str, data: Value| {
        secrets
            .patch(
                secret,
                &ssa,
                &Patch::Apply(json!({
                    "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": secret, "namespace": fed_ns, "labels": {"app.kubernetes.io/part-of": "cellfed-tunnel"}},
                    "data": data,
                })),
            )
            .await
            .with_context(|| format!("writing Secret {fed_ns}/{secret} in the host"))
    };
    let proxy_secret = cellfed_tunnel::auth::PROXY_SECRET_NAME;
    let proxy_token = match secret_value(&secrets, proxy_secret, "token").await? {
        Some(t) => t,
        None => {
            let t = cellfed_tunnel::auth::random_token();
            apply(proxy_secret, json!({"token": b64(&t)})).await?;
            t
        }
    };
    let agent_secret = cellfed_tunnel::auth::agent_secret_name(name);
    let agent_token = secret_value(&secrets, &agent_secret, "token")
        .await?
        .unwrap_or_else(cellfed_tunnel::auth::random_token);
    apply(
        &agent_secret,
        json!({"token": b64(&agent_token), "host": b64(&tunnel.host)}),
    )
    .await?;
    apply(
        secret_name,
        json!({ cellfed_controller::members::PROXY_TOKEN_KEY: b64(&proxy_token) }),
    )
    .await?;
    Ok(agent_token)
}

/// The member-side objects: the agent's Secret (token, tunnel CA) and Deployment in `fed_ns`
/// (pure).
pub fn agent_manifests(name: &str, fed_ns: &str, tunnel: &Tunnel, agent_token: &str) -> Vec<Value> {
    let mut data = json!({"token": b64(agent_token)});
    if let Some(ca) = &tunnel.ca_pem {
        data["ca.crt"] = json!(b64(ca));
    }
    let labels =
        json!({"app.kubernetes.io/name": AGENT_NAME, "app.kubernetes.io/part-of": "cellfed"});
    vec![
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": AGENT_NAME, "namespace": fed_ns, "labels": labels},
            "data": data,
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": AGENT_NAME, "namespace": fed_ns, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": AGENT_NAME}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automountServiceAccountToken": false,
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 65532},
                        "containers": [{
                            "name": "agent",
                            "image": tunnel.image,
                            "args": [
                                "agent",
                                format!("--server={}", tunnel.server_url),
                                format!("--cluster-name={name}"),
                                "--token-file=/etc/cellfed-agent/token",
                                "--ca-file=/etc/cellfed-agent/ca.crt",
                                format!("--apiserver={}", tunnel.agent_apiserver),
                                "--metrics-addr=0.0.0.0:9090",
                            ],
                            "ports": [{"name": "metrics", "containerPort": 9090}],
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}},
                            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
                            "volumeMounts": [{"name": "agent", "mountPath": "/etc/cellfed-agent", "readOnly": true}],
                        }],
                        "volumes": [{"name": "agent", "secret": {"secretName": AGENT_NAME, "defaultMode": 0o400}}],
                    }
                }
            }
        }),
    ]
}

/// Joins `opts.name` through the tunnel: tokens in the host, then join's own objects with the
/// tunnelled endpoint and proxy. Returns join's lines and the member-side manifests.
pub async fn join(
    host: &kube::Client,
    member: &kube::Client,
    access: &MemberAccess,
    opts: &JoinOptions,
    tunnel: &Tunnel,
) -> anyhow::Result<(Vec<String>, Vec<Value>)> {
    let access = tunnelled_access(access, tunnel);
    // join's own objects first: it refuses to overwrite a joined cluster unless told to
    let mut lines = super::join::join_with(host, member, &access, opts).await?;
    let agent_token = if opts.dry_run {
        "<generated>".to_string()
    } else {
        ensure_tokens(host, &opts.fed_ns, &opts.name, &opts.secret_name(), tunnel).await?
    };
    let suffix = if opts.dry_run { " (dry run)" } else { "" };
    lines.push(format!(
        "host: secret/{} configured{suffix}",
        cellfed_tunnel::auth::agent_secret_name(&opts.name)
    ));
    Ok((
        lines,
        agent_manifests(&opts.name, &opts.fed_ns, tunnel, &agent_token),
    ))
}

/// Prints join's lines and the agent's manifests: with `-o yaml` only the manifests on stdout
/// (the lines on stderr), else the lines and how to apply the manifests.
pub fn print(
    name: &str,
    args: &TunnelJoinArgs,
    lines: &[String],
    manifests: &[Value],
) -> anyhow::Result<()> {
    let mut yaml = String::new();
    for m in manifests {
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml::to_string(m)?);
    }
    match args.output.as_deref() {
        Some("yaml") => {
            for l in lines {
                eprintln!("{l}");
            }
            print!("{yaml}");
        }
        Some(other) => anyhow::bail!("--output {other:?}: only yaml is supported"),
        None => {
            for l in lines {
                println!("{l}");
            }
            println!(
                "\nRun the agent in member cluster {name} (it dials out to {}):\n  kubectl cellfed join {name} --via-tunnel -o yaml ... | kubectl --context {name} apply -f -\nor apply:\n{yaml}",
                args.tunnel_server_url
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel() -> Tunnel {
        Tunnel::from_args(
            &TunnelJoinArgs {
                via_tunnel: true,
                tunnel_server_url: "https://tunnel.example.com:8132".into(),
                tunnel_proxy_url: "http://cellfed-tunnel:8131".into(),
                tunnel_host: None,
                tunnel_ca_file: None,
                agent_apiserver: "https://kubernetes.default.svc:443".into(),
                agent_image: "cellfed:test".into(),
                output: None,
            },
            "member1",
        )
        .unwrap()
    }

    #[test]
    fn the_endpoint_becomes_the_tunnel_host_behind_the_proxy() {
        let access = MemberAccess {
            endpoint: "https://10.0.0.1:6443".into(),
            ca_pem: None,
            token: None,
            insecure: false,
            proxy_url: None,
        };
        let t = tunnelled_access(&access, &tunnel());
        assert_eq!(t.endpoint, "https://member1.cluster.internal:6443");
        assert_eq!(t.proxy_url.as_deref(), Some("http://cellfed-tunnel:8131"));
    }

    #[test]
    fn manifests_run_the_agent_for_this_cluster_only() {
        let objects = agent_manifests("member1", "kube-federation-system", &tunnel(), "tok");
        assert_eq!(objects[0]["kind"], "Secret");
        assert_eq!(objects[0]["data"]["token"], b64("tok"));
        let args = &objects[1]["spec"]["template"]["spec"]["containers"][0]["args"];
        let args: Vec<&str> = args
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        assert!(args.contains(&"--cluster-name=member1"));
        assert!(args.contains(&"--server=https://tunnel.example.com:8132"));
    }
}
