import Testing
import MSIShimCore

// Drop reasons are enums now (a fire's result copies no strings); their descriptions must say
// exactly what the text payloads said before, since `msictl mock` prints them and scripts
// match on them.

@Test("a device's drop reasons describe themselves with the texts fire results carried")
func signalDropReasonTexts() {
    let cases: [(SignalDropReason, String)] = [
        (.deviceGone, "device gone"),
        (.noMSIX, "device has no MSI-X capability"),
        (.msixIndexOutOfRange(index: 64, tableSize: 64), "MSI-X index 64 is past the table size 64"),
        (.noMSI, "device has no MSI capability"),
        (.msiDisabled, "MSI is disabled"),
        (.msiBlockedByMSIX, "MSI-X is enabled: MSI cannot signal (rule 11)"),
        (.msiVectorOutOfRange(vector: 4, enabled: 4), "MSI vector 4 is beyond the 4 enabled by Multiple Message Enable"),
        (.noIMSTable, "device has no IMS slot array"),
        (.imsSlotOutOfRange(slot: 4096, slots: 4096), "IMS slot 4096 is past the 4096 slots"),
        (.noIMSInterrupt(index: 3), "no IMS interrupt at index 3 (freed, or never allocated): no storage to signal through"),
        (.noIMSStorage(handle: 0x1010), "no IMS storage at 0x1010 (freed, or never allocated)"),
        (.imsStorageEmpty(handle: 0x1000), "IMS storage at 0x1000 holds no message (its interrupt is not requested)"),
    ]
    for (reason, text) in cases { #expect(reason.description == text) }
}

@Test("the platform's drop reasons describe themselves with the texts deliveries carried")
func deliveryDropReasonTexts() {
    let cases: [(DeliveryDropReason, String)] = [
        (.badAddress(0x1_FEE0_0000), "not an interrupt address: 0x00000001fee00000"),
        (.unsupportedDeliveryMode(4), "delivery mode 4 is not delivered"),
        (.noSuchDestination(9), "no CPU with destination 0x9"),
        (.cpuOffline(1), "CPU 1 is offline"),
        (.invalidVector(0x10), "vector 0x10 is an exception vector"),
        (.shutdownVector(cpu: 0), "CPU 0: vector 0xef (MANAGED_IRQ_SHUTDOWN_VECTOR): spurious"),
        (.systemVector(cpu: 1, vector: 0xFD), "CPU 1: system vector 0xfd"),
        (.noIRQ(cpu: 1, vector: 0x41), "CPU 1: no irq handler for vector 0x41"),
        (.notRequested(virq: 25, cpu: 0, vector: 0x31), "irq 25 (CPU 0 vector 0x31) is not requested"),
        (.remappingFault(.remappingDisabled), "interrupt remapping fault: remappable-format message but remapping is disabled"),
        (.remappingFault(.compatibilityFormatBlocked), "interrupt remapping fault: compatibility-format message blocked"),
        (.remappingFault(.indexOutOfRange(65540)), "interrupt remapping fault: IRTE index 65540 out of range"),
        (.remappingFault(.entryNotPresent(7)), "interrupt remapping fault: IRTE 7 not present"),
        (.noInterruptController, "no interrupt controller attached"),
    ]
    for (reason, text) in cases { #expect(reason.description == text) }
}
