pub fn run(_a: &crate::cli::BuildArgs) -> anyhow::Result<()> {
    anyhow::bail!("wip")
}
