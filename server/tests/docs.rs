//! The operator's documents against the binary they describe: every `hmas` command in them is a
//! real subcommand with real flags (as `--help` lists them), every HMAS_* variable is one the
//! binary reads, and every manifest path exists.
use std::collections::BTreeSet;
use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn help(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_hmas")).args(args).arg("--help").output().unwrap();
    assert!(o.status.success(), "hmas {args:?} --help");
    String::from_utf8(o.stdout).unwrap()
}

fn documents() -> Vec<(String, String)> {
    let mut out = vec![("README.md".to_string(), std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap())];
    for e in std::fs::read_dir(format!("{ROOT}/docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            out.push((p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()));
        }
    }
    out
}

/// Command lines in code blocks (continuations joined) and inline code spans.
fn command_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            let l = line.trim_end();
            if let Some(head) = l.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
            } else {
                pending.push_str(l);
                out.push(std::mem::take(&mut pending));
            }
        } else {
            out.extend(line.split('`').skip(1).step_by(2).map(String::from));
        }
    }
    out
}

/// `hmas <sub> --flag …` invocations in a command line: (subcommand, flags), stopping at the
/// runtime command after `--` and at shell operators.
fn invocations(line: &str) -> Vec<(String, Vec<String>)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if *w != "hmas" || words.get(i.wrapping_sub(1)).is_some_and(|p| p.ends_with('-') && p.len() > 1) {
            continue;
        }
        let Some(sub) = words.get(i + 1).filter(|s| s.chars().all(|c| c.is_ascii_lowercase() || c == '-')) else {
            continue;
        };
        let mut flags = Vec::new();
        for f in &words[i + 2..] {
            if ["--", "|", ">", "&&", ";", "&"].contains(f) || f.starts_with('>') {
                break;
            }
            if let Some(name) = f.strip_prefix("--").map(|n| n.split('=').next().unwrap_or(n)) {
                flags.push(format!("--{}", name.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-')));
            }
        }
        out.push((sub.to_string(), flags));
    }
    out
}

#[test]
fn every_documented_command_and_flag_exists() {
    let root = help(&[]);
    let mut checked = 0;
    for (doc, text) in documents() {
        for line in command_lines(&text) {
            for (sub, flags) in invocations(&line) {
                assert!(
                    root.lines().any(|l| l.trim_start().starts_with(&format!("{sub} "))),
                    "{doc}: `hmas {sub}` is not a command ({line})"
                );
                let sub_help = help(&[&sub]);
                for f in flags {
                    assert!(
                        sub_help.contains(&format!("{f} "))
                            || sub_help.contains(&format!("{f}\n"))
                            || sub_help.contains(&format!("{f}="))
                            || sub_help.contains(&format!("{f} <")),
                        "{doc}: `hmas {sub}` has no {f} ({line})"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} invocations found");
}

#[test]
fn every_documented_variable_is_read_by_the_binary() {
    let all_help: String = ["", "serve", "migrate", "backup", "rotate-master-key", "sim", "agent", "sim-runtime"]
        .iter()
        .map(|s| if s.is_empty() { help(&[]) } else { help(&[s]) })
        .collect();
    let mut seen = BTreeSet::new();
    for (doc, text) in documents() {
        let bytes = text.as_bytes();
        let mut i = 0;
        while let Some(pos) = text[i..].find("HMAS_") {
            let start = i + pos;
            let end = start
                + text[start..]
                    .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                    .unwrap_or(text.len() - start);
            let var = &text[start..end];
            i = end.max(start + 1);
            // `HMAS_PARAM_*` is a family (Modelfile parameters), documented as such.
            if var.ends_with('_') || bytes.get(end) == Some(&b'*') {
                continue;
            }
            assert!(all_help.contains(var), "{doc}: {var} appears in no --help");
            seen.insert(var.to_string());
        }
    }
    for must in ["HMAS_MASTER_KEY", "HMAS_ADMIN_PASSWORD", "HMAS_HUB_KUBECONFIG", "HMAS_RUNTIME", "HMAS_DATABASE_URL"] {
        assert!(seen.contains(must), "{must} is documented");
    }
}

#[test]
fn every_manifest_path_in_the_docs_exists() {
    for (doc, text) in documents() {
        for part in text.split(|c: char| c.is_whitespace() || c == '`' || c == '(' || c == ')') {
            // `deploy/hmas` is kubectl's short name for a Deployment, not a path.
            if let Some(p) = part.strip_prefix("deploy/kubernetes").map(|p| p.trim_end_matches(['.', ',', ':'])) {
                assert!(
                    std::path::Path::new(&format!("{ROOT}/deploy/kubernetes{p}")).exists(),
                    "{doc}: deploy/kubernetes{p} does not exist"
                );
            }
        }
    }
}
