import TestSupport
import Foundation
import Testing

/// `msictl inspect --mock` shows the device's IMS table the way it shows the MSI-X table.
extension MockInspectCLITests {
    @Test("inspect --mock prints the IMS table: live slots with PASID, cookie, irq and counts, reset slots summarized")
    func inspectMockIMSText() throws {
        let s = try script("""
            ims create 4096 device
            alloc ims cookie=2a
            alloc ims cookie=1234
            request ims 0
            fire ims 0
            mask ims 0
            fire ims 0
            """)
        let r = try msictl(["inspect", "--mock", "--script", s])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("  IMS   domain IMS-slots-0000:00:03.0, device storage, hwsize 4096, 4096 slots") })
        let slot0 = try #require(lines.first { $0.hasPrefix("  0    00000000fee0") && $0.contains("0x2a") })
        #expect(slot0.contains("yes    yes") && slot0.contains("physical vector 0x20"), "masked, pending: \(slot0)")
        #expect(lines.contains { $0.hasPrefix("  1    0000000000000000") && $0.contains("0x1234") })
        #expect(lines.contains("  (4094 slots in their reset state: address 0, data 0, masked, not pending; --all shows them)"))
        #expect(lines.contains("  IMS pending: 0"))
        let all = try msictl(["inspect", "--mock", "--all", "--script", s])
        #expect(all.stdout.contains("\n  4095 ") && !all.stdout.contains("slots in their reset state"))
    }

    @Test("inspect --mock --json gains the ims object (every slot) and software storage is listed by cookie")
    func inspectMockIMSJSON() throws {
        let device = try script("ims create 64 device\nalloc ims cookie=7\nrequest ims 0\nfire ims 0\n")
        let r = try msictl(["inspect", "--mock", "--json", "--script", device])
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let ims = try #require(o["ims"] as? [String: Any])
        #expect(ims["storage"] as? String == "device" && ims["hwsize"] as? Int == 64)
        let slots = try #require(ims["slots"] as? [[String: Any]])
        #expect(slots.count == 4096, "inspect JSON lists every slot of the array")
        #expect(slots[0]["pasid"] as? Int == 7 && slots[0]["cookie"] as? String == "0x7" && slots[0]["count"] as? Int == 1)
        #expect(slots[0]["virq"] as? Int != nil && slots[1]["virq"] is NSNull)
        let software = try script("ims create 0 software\nalloc ims cookie=123456789abcdef0\nrequest ims 0\n")
        let sw = try msictl(["inspect", "--mock", "--json", "--script", software])
        let so = try #require(try JSONSerialization.jsonObject(with: Data(sw.stdout.utf8)) as? [String: Any])
        let sims = try #require(so["ims"] as? [String: Any])
        #expect(sims["storage"] as? String == "software")
        let sslots = try #require(sims["slots"] as? [[String: Any]])
        #expect(sslots.count == 1 && sslots[0]["cookie"] as? String == "0x123456789abcdef0" && sslots[0]["index"] as? Int == 0)
    }
}

/// `msictl mock` queue commands as a user meets them.
extension MockInspectCLITests {
    @Test("mock queue commands: results, and one error line per bad line naming it, with the errno; the script goes on")
    func mockQueueTranscript() throws {
        let r = try msictl(["mock", "--script", try script("""
            ims create 4096 device
            queue create vfio pasid=2a
            queue create gpu
            queue free cdev 0
            queue fire 7
            queue fire 0
            """)])
        #expect(r.status == 1)
        #expect(r.stdout.contains("> queue create vfio pasid=2a\n  queue=0 consumer=vfio pasid=0x2a interrupt=ims index=0 virq="))
        #expect(r.stdout.contains("> queue create gpu\n  error EINVAL: line 3: unknown consumer 'gpu'"))
        #expect(r.stdout.contains("> queue free cdev 0\n  error EPERM: line 4: queue 0 belongs to vfio, not cdev"))
        #expect(r.stdout.contains("> queue fire 7\n  error ENOENT: line 5: queue 7 does not exist"))
        #expect(r.stdout.contains("> queue fire 0\n  queue=0 source=ims 0 delivered={virq="))
        let json = try msictl(["mock", "--json", "--script", try script("queue create kernel\nqueue free vfio 0\n")])
        let objs = try objects(json.stdout)
        let created = try #require(objs[0]["result"] as? [String: Any])
        #expect(created["interrupt"] as? String == "msix" && created["index"] as? Int == 1 && created["pasid"] is NSNull)
        #expect(objs[1]["errno"] as? String == "EPERM" && objs[1]["line"] as? Int == 2)
    }
}
