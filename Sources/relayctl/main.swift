import RelayCLISupport

await CLIRunner.main(RelayCtl.self)
