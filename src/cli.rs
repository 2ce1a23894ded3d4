//! Command-line arguments, turned into a validated configuration.

use crate::analysis::diagnose::Kind;
use crate::capture::InputName;
use crate::report::Format;
use crate::Limits;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "misdirect",
    version,
    about = "Explains HTTP 421 Misdirected Request errors from packet captures",
    long_about = None,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse pcap/pcapng files: connections, requests, and why each 421 happened.
    Analyze(AnalyzeArgs),
    /// Capture on a network interface and report each 421 as it happens (needs the `live`
    /// build feature and capture privileges).
    Live(LiveArgs),
    /// Print how `analyze` would group these inputs: one line per partition, a JSON array of
    /// its files. For distributed jobs that run one `analyze` per partition.
    Partitions(PartitionsArgs),
}

#[derive(Debug, Args)]
pub struct PartitionsArgs {
    /// Capture files and directories, as `analyze` takes them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng; "-" reads standard input) and directories. Files named
    /// together are merged in timestamp order, so rotated files of one link read as one
    /// capture. In a directory, each capture file is analysed on its own, and each
    /// subdirectory as one capture (one link's rotated files); the reports are merged.
    #[arg(required = true, value_name = "PATH")]
    pub files: Vec<String>,

    /// Threads (default: one per core). On one capture, one thread reads and decodes and
    /// analyses a share of the connections, the others analyse the rest. The report is the
    /// same for any number, unless a table-wide limit is reached (docs/limits.md).
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,

    /// At the end, print a line on standard error: capture bytes read, time, throughput and
    /// peak memory (resident set, Linux).
    #[arg(long)]
    pub stats: bool,

    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Interface to capture on (see --list-interfaces); `any` captures on all (Linux).
    #[arg(
        long,
        short = 'i',
        value_name = "IF",
        required_unless_present = "list_interfaces"
    )]
    pub interface: Option<String>,

    /// List the interfaces that can be captured on, and exit.
    #[arg(long)]
    pub list_interfaces: bool,

    /// Capture filter, in tcpdump's language (e.g. "tcp port 443").
    #[arg(long, value_name = "EXPR")]
    pub bpf: Option<String>,

    /// Also write every captured packet to this pcapng file (flushed as it goes).
    #[arg(long, short = 'w', value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Stop after this long (e.g. 30s, 5m).
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,

    /// Stop after this many packets.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// Bytes captured per packet.
    #[arg(long, value_name = "BYTES", default_value_t = 262_144)]
    pub snaplen: i32,

    /// Do not put the interface in promiscuous mode.
    #[arg(long)]
    pub no_promiscuous: bool,

    /// Kernel capture buffer, bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub buffer_size: i32,

    /// Encrypted bytes a TLS session may hold while waiting for its keys to appear in a
    /// followed key log.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub hold_for_keys: usize,

    #[command(flatten)]
    pub report: ReportArgs,
}

/// Options shared by `analyze` and `live`: key logs, the report, limits.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// TLS key log (NSS format, as written by browsers and curl via SSLKEYLOGFILE) used to
    /// decrypt; may be given several times. Secrets in pcapng files are used too. `live`
    /// follows the files as they grow (a missing one is waited for).
    #[arg(long, value_name = "FILE")]
    pub keylog: Vec<PathBuf>,

    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Write the report to this file instead of standard output (for `parquet`: into this
    /// directory, which it needs).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Most TCP connections tracked at once; the idlest is evicted beyond it.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,

    /// Most out-of-order bytes buffered per connection direction before a hole is given up.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_ooo_bytes_per_direction)]
    pub max_reassembly_buffer: usize,

    /// Bytes of incomplete TLS records that decrypting sessions may hold while they arrive;
    /// past it, application-data records of 4 KiB or more are decrypted as they come and
    /// authenticated at their end (less memory, the same plaintext).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_tls_records_held)]
    pub max_tls_records_held: usize,

    /// Also decode UDP datagrams to this port as VXLAN (4789 always is; Linux's default is
    /// 8472); may be given several times.
    #[arg(long = "vxlan-port", value_name = "PORT")]
    pub vxlan_port: Vec<u16>,

    /// Never show a progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Colour in the text report: on a terminal only (auto; NO_COLOR turns it off), always,
    /// or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Exit with status 1 when the report has findings of these kinds (comma-separated):
    /// `421` (HTTP 421), `any`, or finding kinds such as `http_421`, `smtp_421`,
    /// `sni_authority_mismatch`, `authority_host_mismatch`. For scripts; the report is written either way.
    #[arg(long, value_name = "KINDS", value_delimiter = ',')]
    pub fail_on: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// A validated `analyze` invocation.
#[derive(Clone, Debug)]
pub struct AnalyzeConfig {
    pub inputs: Vec<InputName>,
    pub threads: usize,
    pub stats: bool,
    pub report: ReportConfig,
}

/// The report options of either command, validated.
#[derive(Clone, Debug)]
pub struct ReportConfig {
    pub keylogs: Vec<PathBuf>,
    pub format: Format,
    pub output: Option<PathBuf>,
    pub limits: Limits,
    pub quiet: bool,
    pub color: ColorChoice,
    /// Finding kinds that make the exit status 1.
    pub fail_on: Vec<Kind>,
}

impl AnalyzeArgs {
    pub fn validate(self) -> Result<AnalyzeConfig, String> {
        let inputs: Vec<InputName> = self.files.iter().map(|f| InputName::parse(f)).collect();
        if inputs.iter().filter(|i| **i == InputName::Stdin).count() > 1 {
            return Err("standard input (\"-\") can be named only once".into());
        }
        let threads = match self.threads {
            Some(0) => return Err("--threads must be at least 1".into()),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok(AnalyzeConfig {
            inputs,
            threads,
            stats: self.stats,
            report: self.report.validate()?,
        })
    }
}

impl ReportArgs {
    pub fn validate(self) -> Result<ReportConfig, String> {
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".into());
        }
        // Before any work: a report that cannot be written is known now.
        crate::report::check_destination(self.format, self.output.as_deref())?;
        let mut fail_on = Vec::new();
        for k in &self.fail_on {
            match k.trim() {
                "421" => fail_on.push(Kind::Http421),
                "any" => fail_on.extend(Kind::ALL),
                k => match Kind::ALL.into_iter().find(|kind| kind.name() == k) {
                    Some(kind) => fail_on.push(kind),
                    None => {
                        return Err(format!(
                            "--fail-on: unknown finding kind {k:?} (use 421, any, or one of {})",
                            Kind::ALL.map(Kind::name).join(", ")
                        ));
                    }
                },
            }
        }
        let limits = Limits {
            max_connections: self.max_connections,
            max_ooo_bytes_per_direction: self.max_reassembly_buffer,
            max_tls_records_held: self.max_tls_records_held,
            vxlan_ports: self.vxlan_port,
            ..Limits::default()
        };
        Ok(ReportConfig {
            keylogs: self.keylog,
            format: self.format,
            output: self.output,
            limits,
            quiet: self.quiet,
            color: self.color,
            fail_on,
        })
    }
}
