// The few Intel 82574 (e1000e) registers the lab uses to make the device raise interrupts
// on demand (Intel 82574 datasheet; QEMU's hw/net/e1000e_core.c implements them).
//
// In MSI-X mode each interrupt cause is routed to a vector by IVAR; a cause fires when
// software writes its bit to ICS while the bit is enabled in IMS. EIAC auto-clears the
// cause in ICR after the vector fired, so the next ICS write raises it again.

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
    /// EITR registers (one per MSI-X vector) throttle interrupts; keep them 0.
    static func eitr(_ vector: Int) -> Int { 0x00E8 + 4 * vector }

    /// ICR/ICS/IMS bits of the five MSI-X causes, in vector order 0…4.
    static let causes: [UInt32] = [1 << 20, 1 << 21, 1 << 22, 1 << 23, 1 << 24]  // RXQ0 RXQ1 TXQ0 TXQ1 OTHER
    static let allCauses: UInt32 = causes.reduce(0, |)

    /// IVAR routing cause i to vector i (4-bit fields: vector in bits 2:0, valid in bit 3).
    static let ivarIdentity: UInt32 = (0..<5).reduce(0) { $0 | (UInt32($1) | 0x8) << UInt32(4 * $1) }

    /// CTRL_EXT.PBA_support: the 82574 reports MSI-X pending bits in the PBA.
    static let ctrlExtPBASupport: UInt32 = 1 << 31

    static let msixVectors = 5
}
