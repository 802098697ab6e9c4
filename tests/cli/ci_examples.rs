//! The CI examples under `ci-examples/` (docs/ci.md) are real YAML, and
//! every mkimg command line in them is one mkimg accepts: each is split
//! into words as the shell would (matrix and job variables expanded with
//! every value the file gives them), parsed by mkimg's own CLI definition,
//! and each `build` line is planned (`mkimg plan` with the same board and
//! overrides) so a board name or option the planner refuses fails here.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use clap::Parser;
use mkimg::cli::{Cli, Command};
use yaml_rust2::{Yaml, YamlLoader};

use crate::support::run::{mkimg, stderr};

/// Every string scalar of the document, depth first.
fn strings<'a>(y: &'a Yaml, out: &mut Vec<&'a str>) {
    match y {
        Yaml::String(s) => out.push(s),
        Yaml::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Yaml::Hash(map) => map.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        _ => {}
    }
}

/// The values each matrix / parallel:matrix variable takes in the file.
fn matrix_values(y: &Yaml, out: &mut BTreeMap<String, Vec<String>>) {
    match y {
        Yaml::Hash(map) => {
            for (k, v) in map {
                let key = k.as_str().unwrap_or_default();
                if key == "matrix" {
                    collect_vars(v, out);
                }
                matrix_values(v, out);
            }
        }
        Yaml::Array(items) => items.iter().for_each(|i| matrix_values(i, out)),
        _ => {}
    }
}

fn collect_vars(y: &Yaml, out: &mut BTreeMap<String, Vec<String>>) {
    match y {
        Yaml::Hash(map) => {
            for (k, v) in map {
                let Some(key) = k.as_str() else { continue };
                let values: Vec<String> = match v {
                    Yaml::String(s) => vec![s.clone()],
                    // GitHub's `include:` entries: variables of their own.
                    Yaml::Array(a) if a.iter().any(|x| matches!(x, Yaml::Hash(_))) => {
                        collect_vars(v, out);
                        continue;
                    }
                    Yaml::Array(a) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect(),
                    _ => {
                        collect_vars(v, out);
                        continue;
                    }
                };
                let slot = out.entry(key.to_string()).or_default();
                for value in values {
                    if !slot.contains(&value) {
                        slot.push(value);
                    }
                }
            }
        }
        Yaml::Array(items) => items.iter().for_each(|i| collect_vars(i, out)),
        _ => {}
    }
}

/// The mkimg command lines of a script: lines (or `&&`/`;` pieces) whose
/// first word is `mkimg`.
fn mkimg_lines(script: &str) -> Vec<String> {
    script
        .lines()
        .flat_map(|l| {
            l.split("&&")
                .flat_map(|p| p.split(';'))
                .map(str::trim)
                .collect::<Vec<_>>()
        })
        .map(|l| {
            l.trim_start_matches("- ")
                .trim_start_matches('(')
                .trim()
                .to_string()
        })
        .filter(|l| l.starts_with("mkimg ") || l.starts_with("sudo mkimg "))
        .collect()
}

/// Every way `line` reads with the file's variables: one line per value of
/// each variable it uses (GitHub `${{ matrix.X }}`, GitLab `$X`).
fn expand(line: &str, vars: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut lines = vec![line.to_string()];
    for (name, values) in vars {
        let forms = [format!("${{{{ matrix.{name} }}}}"), format!("${name}")];
        if !forms.iter().any(|f| line.contains(f.as_str())) {
            continue;
        }
        let mut next = Vec::new();
        for l in &lines {
            for v in values {
                next.push(
                    forms
                        .iter()
                        .fold(l.clone(), |acc, f| acc.replace(f.as_str(), v)),
                );
            }
        }
        lines = next;
    }
    lines
}

#[test]
fn every_mkimg_line_in_the_ci_examples_parses_and_plans() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci-examples");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "GitHub Actions and GitLab CI: {files:?}");
    let mut boards: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let docs = YamlLoader::load_from_str(&fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{name}: not YAML: {e}"));
        let mut texts = Vec::new();
        let mut vars = BTreeMap::new();
        for doc in &docs {
            strings(doc, &mut texts);
            matrix_values(doc, &mut vars);
        }
        let lines: Vec<String> = texts.iter().flat_map(|t| mkimg_lines(t)).collect();
        assert!(
            lines.iter().any(|l| l.starts_with("mkimg build")),
            "{name}: no mkimg build line"
        );
        for line in lines.iter().flat_map(|l| expand(l, &vars)) {
            assert!(
                !line.contains('$'),
                "{name}: unexpanded variable in {line:?}"
            );
            let words = shlex::split(&line).unwrap_or_else(|| panic!("{name}: {line:?}"));
            let words: Vec<&str> = words
                .iter()
                .map(String::as_str)
                .skip_while(|w| *w == "sudo")
                .collect();
            let cli = Cli::try_parse_from(&words)
                .unwrap_or_else(|e| panic!("{name}: mkimg rejects {line:?}:\n{e}"));
            if let Some(Command::Build(args)) = &cli.command {
                let board = args.board.as_deref().expect("--board");
                let seen = boards.entry(name.clone()).or_default();
                if !seen.iter().any(|b| b == board) {
                    seen.push(board.to_string());
                }
                let mut plan = vec!["plan", "--board", board];
                if let Some(grub) = &args.overrides.grub {
                    plan.extend([
                        "--grub",
                        if *grub == mkimg::board::schema::GrubMode::Template {
                            "template"
                        } else {
                            "mkconfig"
                        },
                    ]);
                }
                let out = mkimg(&plan);
                assert!(
                    out.status.success(),
                    "{name}: {line:?} does not plan:\n{}",
                    stderr(&out)
                );
            }
        }
    }
    // Every QEMU board, in each file (matrix values are expanded as a
    // cross product, so a board may be planned more than once).
    for (file, mut seen) in boards {
        seen.sort();
        assert_eq!(
            seen,
            ["qemu-aarch64", "qemu-aarch64-uboot", "qemu-riscv64"],
            "{file}"
        );
    }
}
