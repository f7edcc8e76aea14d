func runIOBench(_ arguments: [String]) throws {
    FileHandleOutput.standardError("not implemented yet\n")
}
