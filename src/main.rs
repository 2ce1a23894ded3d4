//! The `misdirect` binary: arguments → validated config → run → exit code.
//!
//! Exit codes: 0 success (whatever the capture holds), 1 findings of a kind named by
//! `--fail-on`, 2 error (bad arguments, an input that cannot be read as a capture, an output
//! that cannot be written, an interface that cannot be captured on). A closed pipe on
//! standard output (`misdirect ... | head`) is not an error.

use anyhow::Context;
use clap::Parser;
use misdirect::analysis::Report;
use misdirect::capture::{partition, InputName};
use misdirect::cli::{AnalyzeConfig, Cli, ColorChoice, Command, ReportConfig};
use misdirect::proto::tls::keylog::KeyLog;
use misdirect::report::{Connections, Style};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => match args.validate() {
            Ok(config) => analyze(config),
            Err(msg) => Err(anyhow::anyhow!(msg)),
        },
        Command::Live(args) => live(args),
        Command::Partitions(args) => partitions(args),
    };
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("misdirect: {e:#}");
            ExitCode::from(2)
        }
    }
}

enum Outcome {
    Clean,
    /// Findings of a kind `--fail-on` names.
    Findings,
}

fn analyze(config: AnalyzeConfig) -> anyhow::Result<Outcome> {
    let started = std::time::Instant::now();
    let mut keylog = KeyLog::default();
    for path in &config.report.keylogs {
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read key log {}", path.display()))?;
        keylog.add(&text);
    }
    let limits = &config.report.limits;
    let groups = partition::partitions(&config.inputs)?;
    let bar = progress_bar(&groups, config.report.quiet);
    let progress = &mut |bytes| {
        if let Some(bar) = &bar {
            bar.set_position(bytes);
        }
    };
    // The report is written as its records are read back from a temporary file, so memory
    // does not grow with the capture.
    let (report, errors) = misdirect::pipeline::analyze_partitions_spilled(
        &groups,
        limits,
        &keylog,
        config.threads,
        progress,
    )?;

    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Some(trouble) = report.as_ref().and_then(|r| r.connections.trouble()) {
        eprintln!("misdirect: warning: connection records kept in memory: {trouble}");
    }
    let Some(mut report) = report else {
        // Nothing could be read: the (first) reason is the error.
        return Err(errors.into_iter().next().map_or_else(
            || anyhow::anyhow!("no capture to analyse"),
            anyhow::Error::from,
        ));
    };
    // Partitions that could not be read are named in the report and on standard error.
    for e in errors {
        eprintln!("misdirect: warning: skipped {e}");
        report.inputs.push(misdirect::capture::InputSummary {
            name: e.input(),
            format: "unreadable",
            warnings: vec![format!("{e}")],
            ..Default::default()
        });
    }
    let outcome = write_report(&report, &config.report)?;
    let streamed = keylog.record_budget().streamed();
    if streamed > 0 && !config.report.quiet {
        eprintln!(
            "misdirect: note: TLS records held while they arrived reached their budget \
             (--max-tls-records-held {}, shared out between threads); {streamed} records of \
             4 KiB or more were decrypted as they came and authenticated at their end",
            limits.max_tls_records_held
        );
    }
    if config.stats {
        let bytes: u64 = report.inputs.iter().map(|i| i.bytes).sum();
        let seconds = started.elapsed().as_secs_f64();
        let peak = peak_rss().map_or_else(String::new, |b| {
            format!(", peak memory {:.1} MB", b as f64 / 1e6)
        });
        eprintln!(
            "misdirect: {:.1} MB in {seconds:.3} s ({:.1} MB/s){peak}",
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / seconds.max(1e-9),
        );
    }
    Ok(outcome)
}

/// This process's peak resident set in bytes (`VmHWM`), where /proc tells it. Unlike
/// `getrusage`, it starts afresh at exec, so it is this program's own, not its parent's.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn partitions(args: misdirect::cli::PartitionsArgs) -> anyhow::Result<Outcome> {
    let inputs: Vec<InputName> = args.paths.iter().map(|p| InputName::parse(p)).collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for group in partition::partitions(&inputs)? {
        let names: Vec<String> = group.iter().map(InputName::display).collect();
        serde_json::to_writer(&mut out, &names)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(Outcome::Clean)
}

#[cfg(feature = "live")]
fn live(args: misdirect::cli::LiveArgs) -> anyhow::Result<Outcome> {
    if args.list_interfaces {
        for (name, desc) in misdirect::capture::live::interfaces()? {
            match desc {
                Some(d) => println!("{name}\t{d}"),
                None => println!("{name}"),
            }
        }
        return Ok(Outcome::Clean);
    }
    let config = misdirect::live::LiveConfig::from_args(args).map_err(|m| anyhow::anyhow!(m))?;
    let stream_style = Style {
        color: style(&config.report).color,
    };
    let report = misdirect::live::run(&config, stream_style)?;
    write_report(&report, &config.report)
}

#[cfg(not(feature = "live"))]
fn live(_args: misdirect::cli::LiveArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!(
        "this misdirect was built without live capture; build it with `cargo build --release \
         --features live` (needs libpcap: `apt-get install libpcap-dev`)"
    )
}

fn style(config: &ReportConfig) -> Style {
    Style {
        color: match config.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                config.output.is_none()
                    && std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        },
    }
}

/// Writes the report where the options say, and tells whether `--fail-on` findings are in it.
fn write_report<C: Connections>(
    report: &Report<C>,
    config: &ReportConfig,
) -> anyhow::Result<Outcome> {
    let (format, style) = (config.format, style(config));
    // `ReportArgs::validate` checked that the format can go where the options say.
    match &config.output {
        // Parquet: three files in the directory -o names.
        Some(dir) if format == misdirect::report::Format::Parquet => {
            misdirect::report::write_parquet(report, dir)?;
        }
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            misdirect::report::write(report, format, style, &mut out)
                .and_then(|()| out.flush())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            misdirect::report::write(report, format, style, &mut out)?;
            out.flush()?;
        }
    }
    let failing = report
        .findings
        .iter()
        .any(|f| config.fail_on.contains(&f.kind));
    Ok(if failing {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}

/// A bar on stderr for inputs of known size, only when stderr is a terminal.
fn progress_bar(groups: &[Vec<InputName>], quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let mut total = 0u64;
    for input in groups.iter().flatten() {
        match input {
            InputName::Path(p) => total += std::fs::metadata(p).ok()?.len(),
            InputName::Stdin => return None,
        }
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} [{bar:30}] {binary_bytes_per_sec} eta {eta}",
        )
        .ok()?
        .progress_chars("=> "),
    );
    Some(bar)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
