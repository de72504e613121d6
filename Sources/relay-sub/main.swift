import RelayCLISupport

await CLIRunner.main(RelaySub.self)
