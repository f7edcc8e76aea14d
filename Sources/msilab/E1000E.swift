// The few Intel 82574 (e1000e) registers the lab uses to make the device raise interrupts
// on demand (Intel 82574 datasheet; QEMU's hw/net/e1000e_core.c implements them).
//
// In MSI-X mode each interrupt cause is routed to a vector by IVAR; a cause fires when
// software writes its bit to ICS while the bit is enabled in IMS. EIAC auto-clears the
// cause in ICR after the vector fired — and, unless CTRL_EXT.IAME is set, clears its IMS
// bit too — so each raise is "IMS = cause, ICS = cause".
//
// Throttling: QEMU 7.2 resets ITR/EITR to 500 (x 256 ns = 128 µs) and clamps any write to at
// least that, so a second interrupt on a vector within 128 µs of the first is postponed to the
// timer — and QEMU 7.2 never clears the "postponed" flag, so every later timer expiry sends one
// more: back-to-back raises give duplicates. The timer runs in QEMU's main loop, which a
// loaded host starves for milliseconds, so "within 128 µs" can mean "before the next step":
// the duplicate then lands after a later mask and sets a pending bit the mock never sets.
// Every raise therefore waits the timer out before the next step (letThrottlingTimersExpire),
// and scenarios count exactly. Never set CTRL_EXT bit 31 (PBA_CLR in QEMU): an IMS write would then clear
// the vector's pending bit, which the PBA checks must observe.
import MSIShimCore

enum E1000E {
    /// BAR0 register offsets.
    static let ctrlExt = 0x0018
    static let icr = 0x00C0
    static let itr = 0x00C4
    static let ics = 0x00C8
    static let ims = 0x00D0
    static let imc = 0x00D8
    static let eiac = 0x00DC
    static let ivar = 0x00E4

    /// ICR/ICS/IMS bits of the five MSI-X causes, in vector order 0…4.
    static let causes: [UInt32] = [1 << 20, 1 << 21, 1 << 22, 1 << 23, 1 << 24]  // RXQ0 RXQ1 TXQ0 TXQ1 OTHER
    static let causeNames = ["RXQ0", "RXQ1", "TXQ0", "TXQ1", "OTHER"]
    static let allCauses: UInt32 = causes.reduce(0, |)

    /// IVAR routing cause i to vector i (4-bit fields: vector in bits 2:0, valid in bit 3).
    static let ivarIdentity: UInt32 = (0..<5).reduce(0) { $0 | (UInt32($1) | 0x8) << UInt32(4 * $1) }

    static let msixVectors = 5
    static let vendorDevice: (UInt16, UInt16) = (0x8086, 0x10D3)

    /// Puts the interrupt logic in a known state: every cause masked and cleared, causes
    /// routed to vectors 1:1, auto-clear on for the five MSI-X causes.
    static func quiesce(_ bar0: some MMIORegion) throws {
        try bar0.write32(imc, 0xFFFF_FFFF)
        try bar0.write32(icr, 0xFFFF_FFFF)
        try bar0.write32(ivar, ivarIdentity)
        try bar0.write32(eiac, allCauses)
    }

    /// QEMU 7.2's e1000e arms a 128 µs throttling timer whenever it sends an interrupt (the ITR
    /// timer for INTx and MSI, one EITR timer per MSI-X vector) and asserts, when the timer
    /// fires, that the device is still in the mode that armed it — QEMU aborts otherwise
    /// (`e1000e_intrmgr_on_throttling_timer: Assertion !msix_enabled`, and the reverse for
    /// EITR). A loaded host delays the callback far past 128 µs, so before the interrupt mode
    /// changes (MSI-X or MSI enabled or disabled), and after every raise, the lab lets every
    /// armed timer run out.
    static func letThrottlingTimersExpire() { sleepMs(50) }

    /// Makes the device raise the cause routed to `vector` (IMS then ICS).
    static func raise(_ bar0: some MMIORegion, vector: Int) throws {
        try bar0.write32(ims, causes[vector])
        try bar0.write32(ics, causes[vector])
    }
}
