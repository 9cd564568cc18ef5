#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Unauthenticated denial of service: `cellfed apiserver` limited to 256 file descriptors,
//! 300 idle TCP connections that never speak. A real client is still served, the server does
//! not spin on failed accepts, and its log stays small.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use cellfed_e2e::{binary, eventually, kubectl_raw};

/// User + system CPU seconds the process has used (from /proc).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // fields after the command name, which is in parentheses
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[test]
fn idle_connections_beyond_the_descriptor_limit_do_not_lock_out_real_clients() {
    let dir = std::env::temp_dir().join(format!("cellfed-e2e-hardening-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = dir.join("apiserver.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" apiserver --listen \"127.0.0.1:$1\" --data-dir \"$2\"")
        .arg(binary("cellfed"))
        .arg(port.to_string())
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = child.id();
    let kubeconfig = dir.join("data/kubeconfig");
    eventually(60, "the apiserver to be ready", || {
        if !kubeconfig.exists() {
            return Err("no kubeconfig yet".into());
        }
        let out = kubectl_raw(&kubeconfig, None, &["get", "--raw", "/readyz"]);
        if out.0 { Ok(()) } else { Err(out.2) }
    });

    let mut idle = Vec::new();
    for _ in 0..300 {
        match TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)) {
            Ok(s) => idle.push(s),
            Err(e) => eprintln!("connect: {e}"),
        }
    }
    assert!(
        idle.len() >= 256,
        "only {} idle connections opened",
        idle.len()
    );
    let cpu_before = cpu_seconds(pid);

    // a real client, with kube's per-request deadline, while the idle connections are open
    let (ok, out, err) = kubectl_raw(
        &kubeconfig,
        None,
        &["get", "namespaces", "-o", "name", "--request-timeout=5s"],
    );
    assert!(ok, "a real client was not served: {err}");
    assert!(out.contains("namespace/default"), "{out}");

    // no busy loop on failed accepts: measured over a window of idle holding
    std::thread::sleep(Duration::from_secs(3));
    let cpu = cpu_seconds(pid) - cpu_before;
    let log_bytes = std::fs::metadata(&log_path).unwrap().len();
    let idle_count = idle.len();
    drop(idle);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "{} idle connections held: server CPU {cpu:.2} s over the 3 s window (+ the real request), log {log_bytes} bytes",
        idle_count
    );
    assert!(
        cpu < 1.5,
        "the server used {cpu:.2} CPU seconds while 300 idle connections were held"
    );
    assert!(log_bytes < 1_000_000, "{log_bytes} bytes of log");
}
