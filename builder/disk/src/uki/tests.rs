use super::*;

/// A minimal PE32+ EFI application: headers in 0x400 bytes, one `.text`
/// section of 0x200 bytes at 0x1000, and trailing bytes standing for a
/// COFF symbol table.
fn stub() -> Vec<u8> {
    let mut b = vec![0u8; 0x600 + 64];
    b[0..2].copy_from_slice(b"MZ");
    b[0x3C..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    b[0x80..0x84].copy_from_slice(b"PE\0\0");
    let coff = 0x84;
    b[coff..coff + 2].copy_from_slice(&0x8664u16.to_le_bytes());
    b[coff + 2..coff + 4].copy_from_slice(&1u16.to_le_bytes());
    b[coff + 8..coff + 12].copy_from_slice(&0x600u32.to_le_bytes());
    b[coff + 12..coff + 16].copy_from_slice(&3u32.to_le_bytes());
    b[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes());
    let opt = coff + 20;
    b[opt..opt + 2].copy_from_slice(&0x20Bu16.to_le_bytes());
    b[opt + 32..opt + 36].copy_from_slice(&0x200u32.to_le_bytes());
    b[opt + 36..opt + 40].copy_from_slice(&0x200u32.to_le_bytes());
    b[opt + 56..opt + 60].copy_from_slice(&0x1200u32.to_le_bytes());
    b[opt + 60..opt + 64].copy_from_slice(&0x400u32.to_le_bytes());
    b[opt + 64..opt + 68].copy_from_slice(&0x1234u32.to_le_bytes());
    b[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
    let table = opt + 240;
    b[table..table + 5].copy_from_slice(b".text");
    b[table + 8..table + 12].copy_from_slice(&0x1F0u32.to_le_bytes());
    b[table + 12..table + 16].copy_from_slice(&0x1000u32.to_le_bytes());
    b[table + 16..table + 20].copy_from_slice(&0x200u32.to_le_bytes());
    b[table + 20..table + 24].copy_from_slice(&0x400u32.to_le_bytes());
    b[0x400..0x600].fill(0xCC);
    b[0x600..].fill(0xEE);
    b
}

fn section(name: &'static str, bytes: &'static [u8]) -> Section<'static> {
    Section {
        name,
        len: bytes.len() as u64,
        content: Box::new(bytes),
    }
}

fn assembled(sections: Vec<Section<'_>>) -> Result<Vec<u8>, DiskError> {
    let mut out = std::io::Cursor::new(Vec::new());
    assemble(&stub(), sections, &mut out)?;
    Ok(out.into_inner())
}

/// The PE checksum, computed the plain way over a whole image.
fn pe_checksum(image: &[u8], field: usize) -> u32 {
    let mut bytes = image.to_vec();
    bytes[field..field + 4].fill(0);
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let mut sum: u64 = 0;
    for word in bytes.chunks(2) {
        sum += u64::from(u16::from_le_bytes([word[0], word[1]]));
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    ((sum & 0xffff) + image.len() as u64) as u32
}

#[test]
fn sections_follow_the_stub_aligned_with_their_bytes_in_place() {
    let image = assembled(vec![
        section(".osrel", b"ID=debian\n"),
        section(".cmdline", b"ro quiet"),
        section(".linux", &[0x4D; 5000]),
    ])
    .unwrap();
    let listed = sections(&image).unwrap();
    let names: Vec<&str> = listed.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, [".text", ".osrel", ".cmdline", ".linux"]);
    assert_eq!(listed[1], (".osrel".to_owned(), 0x2000, 10, 0x600));
    assert_eq!(listed[2], (".cmdline".to_owned(), 0x3000, 8, 0x800));
    assert_eq!(listed[3], (".linux".to_owned(), 0x4000, 5000, 0xA00));
    assert_eq!(&image[0x600..0x60A], b"ID=debian\n");
    assert_eq!(&image[0x800..0x808], b"ro quiet");
    assert!(image[0xA00..0xA00 + 5000].iter().all(|b| *b == 0x4D));
    assert_eq!(image.len(), 0xA00 + 5120, "padded to the file alignment");
    // The stub's own section is unchanged; its symbol table is gone.
    assert!(image[0x400..0x600].iter().all(|b| *b == 0xCC));
    assert!(!image.contains(&0xEE));
    let coff = 0x84;
    assert_eq!(u16_at(&image, coff + 2).unwrap(), 4);
    assert_eq!(u32_at(&image, coff + 8).unwrap(), 0);
    let opt = coff + 20;
    assert_eq!(u32_at(&image, opt + 56).unwrap(), 0x4000 + 5120);
    assert_eq!(
        u32_at(&image, opt + 64).unwrap(),
        pe_checksum(&image, opt + 64),
        "the checksum of the image as written"
    );
}

#[test]
fn what_cannot_be_extended_is_refused_with_the_reason() {
    let refused = |b: Vec<u8>, sections: Vec<Section<'static>>| {
        let mut out = std::io::Cursor::new(Vec::new());
        match assemble(&b, sections, &mut out) {
            Err(DiskError::Stub(why)) => why,
            other => panic!("{other:?}"),
        }
    };
    assert!(refused(b"MZ".to_vec(), vec![]).contains("ends before"));
    assert!(refused(vec![0; 4096], vec![]).contains("MZ"));
    let mut signed = stub();
    signed[0x84 + 20 + 112 + 36..0x84 + 20 + 112 + 40].copy_from_slice(&16u32.to_le_bytes());
    assert!(refused(signed, vec![]).contains("signed"));
    let mut i386 = stub();
    i386[0x84..0x86].copy_from_slice(&0x14Cu16.to_le_bytes());
    assert!(refused(i386, vec![]).contains("x86-64"));
    let mut outside = stub();
    outside[0x84 + 20 + 240 + 20..0x84 + 20 + 240 + 24]
        .copy_from_slice(&0xFFFF_0000u32.to_le_bytes());
    assert!(refused(outside, vec![]).contains("past the end"));
    assert!(refused(stub(), vec![section(".text", b"x")]).contains("already"));
    let many = (0..20).map(|_| section(".x", b"")).collect();
    assert!(refused(stub(), many).contains("room for"));
}

#[test]
fn a_short_section_reader_is_an_error_not_a_short_image() {
    let short = Section {
        name: ".initrd",
        len: 100,
        content: Box::new(&b"only ten b"[..]),
    };
    let error = assembled(vec![short]).unwrap_err();
    assert!(
        error.to_string().contains("ended after 10 of 100"),
        "{error}"
    );
}

#[test]
fn objdump_reads_the_sections() {
    if !airlock_fixtures::gate::tool("objdump", "binutils") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uki.efi");
    let image = assembled(vec![
        section(".osrel", b"ID=x\n"),
        section(".cmdline", b"ro"),
    ])
    .unwrap();
    std::fs::write(&path, image).unwrap();
    let out = std::process::Command::new("objdump")
        .arg("-h")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pei-x86-64"), "{text}");
    for (name, vma) in [
        (".osrel", "0000000000002000"),
        (".cmdline", "0000000000003000"),
    ] {
        assert!(
            text.lines().any(|l| l.contains(name) && l.contains(vma)),
            "{name} at {vma}:\n{text}"
        );
    }
}

#[test]
fn the_checksum_is_the_same_whatever_the_writes_odd_lengths() {
    // An odd-length section makes the stream's words straddle writes.
    let image = assembled(vec![
        section(".osrel", b"ID=x\n"),
        section(".cmdline", b"odd"),
        section(".uname", b"6.1.0-57-cloud-amd64"),
    ])
    .unwrap();
    let field = 0x84 + 20 + 64;
    assert_eq!(u32_at(&image, field).unwrap(), pe_checksum(&image, field));
    assert_ne!(u32_at(&image, field).unwrap(), 0);
}
