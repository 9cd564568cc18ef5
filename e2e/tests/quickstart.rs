#![allow(clippy::unwrap_used, clippy::expect_used)]
//! docs/quickstart.md, run as written: every command of its ```sh blocks, in order, in one
//! directory that looks like the repository root (`examples/` and `target/` are linked in), with a
//! real `cellfed up --members 2`. The doc cannot drift: a command that fails, or a comment whose
//! claim does not hold, fails this test.
//!
//! How a line is run (the whole rule set):
//! - `cargo …` is skipped: the binaries are already built.
//! - `export NAME=VALUE` sets NAME for the following commands (VALUE expanded by bash).
//! - a command ending in `&` is started in the background and waited for until it prints
//!   `cellfed is up`; it is stopped with SIGINT (Ctrl-C) at the end.
//! - a comment saying `exits N` means the command runs once and must exit with N; every other
//!   command is retried (reconciling is asynchronous) until it exits 0 and its claims hold.
//! - claims read from the comment after `#`: `N replicas` and an image `name:tag` are checked on
//!   the object the command gets (`-o json`); `Ready` means every cluster named on the line shows
//!   `True`; `Error from server …` is the whole output; `creates nothing` means the federated object does not exist afterwards; any other word
//!   with a digit in it (`member2`, `rz00a.shop`, `1/3`) must appear in the command's output.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cellfed_e2e::{binary, root};

/// One shell command of the doc with its trailing comment.
#[derive(Debug)]
struct Step {
    command: String,
    comment: String,
}

/// The commands of the ```sh blocks, continuation lines (`\`) joined, comments split off.
fn steps(markdown: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in markdown.lines() {
        let trimmed = line.trim();
        if !in_sh {
            in_sh = trimmed == "```sh";
            continue;
        }
        if trimmed == "```" {
            in_sh = false;
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(trimmed);
        let full = std::mem::take(&mut pending);
        if full.is_empty() {
            continue;
        }
        let (command, comment) = split_comment(&full);
        out.push(Step {
            command: command.trim().to_string(),
            comment: comment.trim().to_string(),
        });
    }
    out
}

/// Splits at the first `#` that starts a shell comment (preceded by a blank, outside quotes).
fn split_comment(line: &str) -> (&str, &str) {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '#' && prev.is_whitespace() => return (&line[..i], &line[i + 1..]),
            None => {}
        }
        prev = c;
    }
    (line, "")
}

/// The exit code a comment promises (`exits 1`), if it names one.
fn promised_exit(comment: &str) -> Option<i32> {
    let words: Vec<&str> = comment
        .split(|c: char| c.is_whitespace() || c == ',' || c == ')' || c == '(')
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .find(|w| w[0] == "exits")
        .map(|w| w[1].parse().expect("exits N"))
}

struct Shell {
    dir: std::path::PathBuf,
    env: Vec<(String, String)>,
    background: Vec<Child>,
}

impl Shell {
    fn command(&self, script: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(script).current_dir(&self.dir);
        cmd.env_remove("KUBECONFIG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `script`; (exit code, stdout + stderr).
    fn run(&self, script: &str) -> (i32, String) {
        let out = self.command(script).stdin(Stdio::null()).output().unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), text)
    }

    fn export(&mut self, assignment: &str) {
        let (name, value) = assignment.split_once('=').expect("export NAME=VALUE");
        let (code, expanded) = self.run(&format!("printf '%s' {value}"));
        assert_eq!(code, 0, "expanding {value}: {expanded}");
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_string(), expanded));
    }

    fn spawn_until_up(&mut self, script: &str) {
        let mut child = self
            .command(&format!("exec {script}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        self.background.push(child);
        for line in BufReader::new(stdout).lines() {
            if line.unwrap().starts_with("cellfed is up") {
                return;
            }
        }
        panic!("`{script}` exited before it printed `cellfed is up`");
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        for child in &mut self.background {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// Checks the claims of `step`'s comment against `output`; Err says which one failed.
fn check_claims(shell: &Shell, step: &Step, output: &str) -> Result<(), String> {
    let words: Vec<&str> = step
        .comment
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .collect();
    let mut object: Option<serde_json::Value> = None;
    let mut json = || -> Result<serde_json::Value, String> {
        if let Some(v) = &object {
            return Ok(v.clone());
        }
        let (code, text) = shell.run(&format!("{} -o json", step.command));
        if code != 0 {
            return Err(text);
        }
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        object = Some(v.clone());
        Ok(v)
    };
    for (i, word) in words.iter().enumerate() {
        let next = words.get(i + 1).copied().unwrap_or("");
        if next == "replicas" {
            let v = json()?;
            if v["spec"]["replicas"].as_u64() != word.parse::<u64>().ok() {
                return Err(format!(
                    "spec.replicas is {}, not {word}",
                    v["spec"]["replicas"]
                ));
            }
        } else if *word == "replicas"
            || *word == "exits"
            || words.get(i.wrapping_sub(1)) == Some(&"exits")
        {
        } else if word.contains(':')
            && !word.ends_with(':')
            && word.chars().any(|c| c.is_ascii_digit())
        {
            let v = json()?;
            let image = &v["spec"]["template"]["spec"]["containers"][0]["image"];
            if image != *word {
                return Err(format!("image is {image}, not {word}"));
            }
        } else if *word == "Ready" || *word == "Ready:" {
            for line in output.lines().skip(1) {
                if !line.contains("True") {
                    return Err(format!("not Ready: {line}"));
                }
            }
        } else if word.chars().any(|c| c.is_ascii_digit()) {
            let word = word.trim_end_matches(['…', ':', '.']);
            if !output.contains(word) {
                return Err(format!("`{word}` is not in the output"));
            }
        }
    }
    if let Some(at) = step.comment.find("Error from server") {
        let expected = step.comment[at..]
            .split(", exits")
            .next()
            .unwrap_or_default();
        if output.trim() != expected {
            return Err(format!("the error is not the one line `{expected}`"));
        }
        return Ok(());
    }
    if step.comment.contains("creates nothing") {
        let federated = federated_of(&step.command);
        let (code, text) = shell.run(&format!("kubectl get {federated}"));
        if code == 0 {
            return Err(format!("`{federated}` exists after a preview: {text}"));
        }
    }
    Ok(())
}

/// `kubectl cellfed federate KIND NAME -n NS …` → `federatedKIND NAME -n NS`.
fn federated_of(command: &str) -> String {
    let words: Vec<&str> = command.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "federate")
        .expect("`creates nothing` is claimed for `kubectl cellfed federate`");
    format!(
        "federated{} {} -n {}",
        words[at + 1],
        words[at + 2],
        words[words.iter().position(|w| *w == "-n").unwrap() + 1]
    )
}

#[test]
fn parses_the_doc_rules() {
    let md = "x\n```sh\ncargo build\nexport A=$PWD/x   # note\nfoo a \\\n  -p '{\"a\":\"#\"}'  # b\n```\n```yaml\nno: run\n```\n";
    let s = steps(md);
    assert_eq!(s.len(), 3);
    assert_eq!(s[1].command, "export A=$PWD/x");
    assert_eq!(s[2].command, "foo a -p '{\"a\":\"#\"}'");
    assert_eq!(s[2].comment, "b");
    assert_eq!(promised_exit("1/3, exits 1"), Some(1));
    assert_eq!(promised_exit("3/3"), None);
}

#[test]
fn quickstart_runs_as_written() {
    if cellfed_e2e::skip("quickstart_runs_as_written", true) {
        return;
    }
    let doc = std::fs::read_to_string(root().join("docs/quickstart.md")).unwrap();
    let steps = steps(&doc);
    assert!(
        steps.len() > 20,
        "the quickstart lost its commands: {steps:?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::os::unix::fs::symlink(root().join("examples"), dir.join("examples")).unwrap();
    // `$PWD/target/debug` of the doc: the directory the built binaries are in
    let bin_dir = binary("cellfed").parent().unwrap().to_path_buf();
    std::fs::create_dir(dir.join("target")).unwrap();
    std::os::unix::fs::symlink(&bin_dir, dir.join("target/debug")).unwrap();
    binary("kubectl-cellfed");

    let mut shell = Shell {
        dir,
        env: Vec::new(),
        background: Vec::new(),
    };
    for step in &steps {
        let command = step.command.as_str();
        if command.starts_with("cargo ") {
            continue;
        }
        if let Some(assignment) = command.strip_prefix("export ") {
            shell.export(assignment);
            continue;
        }
        if let Some(background) = command.strip_suffix('&') {
            shell.spawn_until_up(background.trim());
            continue;
        }
        if let Some(code) = promised_exit(&step.comment) {
            let (got, output) = shell.run(command);
            assert_eq!(got, code, "`{command}` must exit {code}:\n{output}");
            check_claims(&shell, step, &output)
                .unwrap_or_else(|e| panic!("`{command}` # {}: {e}\n{output}", step.comment));
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (code, output) = shell.run(command);
            let result = if code == 0 {
                check_claims(&shell, step, &output)
            } else {
                Err(format!("exit {code}"))
            };
            match result {
                Ok(()) => break,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "`{command}` # {}: {e}\n{output}",
                    step.comment
                ),
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}
