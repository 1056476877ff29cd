use clap::{Parser, Subcommand};

/// Reports, and can enforce, the effective seccomp profile of every container in a cluster.
#[derive(Parser, Debug)]
#[command(name = "seccomp-sentinel", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the CustomResourceDefinitions of seccomp-sentinel as YAML.
    Crds,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => Ok(()),
    }
}
