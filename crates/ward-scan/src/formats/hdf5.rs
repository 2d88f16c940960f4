//! Reads the string attributes of an HDF5 file's root group, the way h5py finds
//! `f.attrs["model_config"]`: superblock -> root object header (and its continuation
//! blocks) -> attribute messages -> the value inline (fixed-length strings) or in the
//! global heap (variable-length strings, h5py's default for `str`).
//!
//! Only those structures are read, each bounded by the limits; datasets are never
//! touched. Dense attribute storage (a fractal heap, used when a group holds
//! many or very large attributes) is read through its name index when that index is
//! a single leaf and the heap unfiltered, which covers what h5py writes for a few
//! dozen attributes; deeper indexes, huge heap objects and shared (SOHM) attribute
//! messages are reported as [`Event::Unsupported`] so that a caller can say what was
//! not checked.

use std::io::{Read, SeekFrom};

use crate::{Limits, Source};

/// What the walk met.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// A string attribute of the root group (each element of an array separately).
    Attribute {
        /// Attribute name.
        name: String,
        /// Its value; at most `limits.header_bytes_max` bytes.
        value: Vec<u8>,
        /// Offset of the value (or of its attribute message).
        offset: u64,
    },
    /// A structure holding root attributes that is not read.
    Unsupported {
        /// Where it is.
        offset: u64,
        /// What it is, for a person.
        what: String,
    },
}

/// Why the walk stopped.
#[derive(Debug)]
pub struct H5Error {
    /// Where.
    pub offset: u64,
    /// Why, for a person.
    pub reason: String,
}

type H5Result<T> = Result<T, H5Error>;

fn fail<T>(offset: u64, reason: impl Into<String>) -> H5Result<T> {
    Err(H5Error {
        offset,
        reason: reason.into(),
    })
}

/// Little-endian unsigned integer of `size` bytes at `at`.
fn uint(buf: &[u8], at: usize, size: usize) -> Option<u64> {
    let bytes = buf.get(at..at.checked_add(size)?)?;
    if size > 8 {
        return None;
    }
    Some(
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
    )
}

struct File<'s> {
    src: &'s mut dyn Source,
    len: u64,
    base: u64,
    /// Size of offsets and of lengths, from the superblock.
    o: usize,
    l: usize,
    limits: Limits,
    read: u64,
}

/// Walks the root group's attributes, calling `visit` for each string attribute and
/// each unsupported structure. Events before an error have been delivered.
pub fn root_attributes(
    src: &mut dyn Source,
    limits: &Limits,
    visit: &mut dyn FnMut(Event),
) -> (u64, H5Result<()>) {
    let len = match src.seek(SeekFrom::End(0)) {
        Ok(len) => len,
        Err(e) => return (0, fail(0, format!("cannot seek: {e}"))),
    };
    let mut f = File {
        src,
        len,
        base: 0,
        o: 8,
        l: 8,
        limits: limits.clone(),
        read: 0,
    };
    let res = f.superblock().and_then(|root| f.object_header(root, visit));
    (f.read, res)
}

impl File<'_> {
    /// Reads `len` bytes at absolute offset `at`, bounded by the file and the limits.
    fn read_at(&mut self, at: u64, len: u64) -> H5Result<Vec<u8>> {
        if len > self.limits.header_bytes_max {
            return fail(
                at,
                format!("{len}-byte structure exceeds limits.header_bytes_max"),
            );
        }
        if at.checked_add(len).is_none_or(|end| end > self.len) {
            return fail(
                at,
                format!("{len}-byte structure runs past the end of the file"),
            );
        }
        let mut buf = Vec::new();
        let res = self
            .src
            .seek(SeekFrom::Start(at))
            .and_then(|_| (&mut *self.src).take(len).read_to_end(&mut buf));
        match res {
            Ok(n) if n as u64 == len => {
                self.read = self.read.saturating_add(len);
                Ok(buf)
            }
            Ok(_) => fail(at, "truncated"),
            Err(e) => fail(at, format!("read error: {e}")),
        }
    }

    /// An address field: relative to the base address; `None` when undefined.
    fn address(&self, buf: &[u8], at: usize) -> Option<u64> {
        let raw = uint(buf, at, self.o)?;
        let undefined =
            (self.o >= 8 && raw == u64::MAX) || (self.o < 8 && raw == (1u64 << (8 * self.o)) - 1);
        if undefined {
            None
        } else {
            raw.checked_add(self.base)
        }
    }

    /// Parses the superblock at offset 0; returns the root object header address.
    fn superblock(&mut self) -> H5Result<u64> {
        let sb = self.read_at(0, self.len.min(128))?;
        let version = *sb.get(8).unwrap_or(&0xff);
        let (o, l, base_at, root_at) = match version {
            0 | 1 => {
                let o = usize::from(*sb.get(13).unwrap_or(&0));
                let start = if version == 0 { 24 } else { 28 };
                (
                    o,
                    usize::from(*sb.get(14).unwrap_or(&0)),
                    start,
                    start + 5 * o,
                )
            }
            2 | 3 => {
                let o = usize::from(*sb.get(9).unwrap_or(&0));
                (o, usize::from(*sb.get(10).unwrap_or(&0)), 12, 12 + 3 * o)
            }
            v => return fail(8, format!("unsupported superblock version {v}")),
        };
        if ![2, 4, 8].contains(&o) || ![2, 4, 8].contains(&l) {
            return fail(13, format!("unsupported offset/length sizes {o}/{l}"));
        }
        (self.o, self.l) = (o, l);
        self.base = uint(&sb, base_at, o).unwrap_or(0);
        match self.address(&sb, root_at) {
            Some(root) => Ok(root),
            None => fail(root_at as u64, "no root group address"),
        }
    }

    /// Walks the object header at `at` and its continuation blocks.
    fn object_header(&mut self, at: u64, visit: &mut dyn FnMut(Event)) -> H5Result<()> {
        let prefix = self.read_at(at, self.len.saturating_sub(at).min(64))?;
        let (v2, first) = if prefix.starts_with(b"OHDR") {
            (true, self.v2_first_block(at, &prefix)?)
        } else if prefix.first() == Some(&1) {
            let size = uint(&prefix, 8, 4).unwrap_or(0);
            (false, (at + 16, size))
        } else {
            return fail(at, "not an object header");
        };
        let mut queue = vec![first];
        let mut seen = std::collections::BTreeSet::new();
        let mut blocks = 0u32;
        while let Some((addr, len)) = queue.pop() {
            // A continuation pointing back at a block read already would loop.
            if !seen.insert(addr) {
                continue;
            }
            blocks += 1;
            if blocks > self.limits.hdf5_header_blocks_max {
                return fail(
                    addr,
                    "more header blocks than limits.hdf5_header_blocks_max",
                );
            }
            let block = self.read_at(addr, len)?;
            let continued = blocks > 1;
            let (skip, trailer) = match (v2, continued) {
                (true, true) if block.starts_with(b"OCHK") => (4, 4),
                (true, true) => return fail(addr, "continuation block without OCHK"),
                (true, false) => (0, 4),
                (false, _) => (0, 0),
            };
            let body = block
                .get(skip..block.len().saturating_sub(trailer))
                .unwrap_or_default();
            let origin = addr + skip as u64;
            self.messages(body, origin, v2, &prefix, &mut queue, visit)?;
        }
        Ok(())
    }

    /// A version 2 header's first chunk: (address, length including the checksum).
    fn v2_first_block(&self, at: u64, prefix: &[u8]) -> H5Result<(u64, u64)> {
        let flags = *prefix.get(5).unwrap_or(&0);
        let mut i = 6;
        if flags & 0x20 != 0 {
            i += 16;
        }
        if flags & 0x10 != 0 {
            i += 4;
        }
        let width = 1usize << (flags & 3);
        let Some(size) = uint(prefix, i, width) else {
            return fail(at, "truncated object header");
        };
        Ok((at + (i + width) as u64, size.saturating_add(4)))
    }

    fn messages(
        &mut self,
        body: &[u8],
        origin: u64,
        v2: bool,
        prefix: &[u8],
        queue: &mut Vec<(u64, u64)>,
        visit: &mut dyn FnMut(Event),
    ) -> H5Result<()> {
        let order = v2 && prefix.get(5).is_some_and(|f| f & 0x04 != 0);
        let head = match (v2, order) {
            (false, _) => 8,
            (true, false) => 4,
            (true, true) => 6,
        };
        let mut i = 0usize;
        while i + head <= body.len() {
            let (kind, size, flags) = if v2 {
                (uint(body, i, 1), uint(body, i + 1, 2), body.get(i + 3))
            } else {
                (uint(body, i, 2), uint(body, i + 2, 2), body.get(i + 4))
            };
            let (Some(kind), Some(size)) = (kind, size) else {
                break;
            };
            let start = i + head;
            let end = start + size as usize;
            let Some(data) = body.get(start..end) else {
                return fail(origin + i as u64, "header message runs past its block");
            };
            let at = origin + start as u64;
            let shared = flags.is_some_and(|f| f & 0x02 != 0);
            match kind {
                0x10 => {
                    let (Some(addr), Some(len)) =
                        (self.address(data, 0), uint(data, self.o, self.l))
                    else {
                        return fail(at, "bad continuation message");
                    };
                    queue.push((addr, len));
                }
                0x0C if shared => visit(Event::Unsupported {
                    offset: at,
                    what: "a shared attribute message".into(),
                }),
                0x0C => self.attribute(data, at, visit)?,
                0x15 => self.attribute_info(data, at, visit),
                _ => {}
            }
            i = end;
        }
        Ok(())
    }

    /// Attribute Info: a defined fractal heap address means dense attribute storage,
    /// read through its name index. What that reader does not support is reported.
    fn attribute_info(&mut self, data: &[u8], at: u64, visit: &mut dyn FnMut(Event)) {
        let flags = *data.get(1).unwrap_or(&0);
        let heap_at = if flags & 1 != 0 { 4 } else { 2 };
        let Some(heap) = self.address(data, heap_at) else {
            return;
        };
        let res = match self.address(data, heap_at + self.o) {
            Some(index) => self.dense(heap, index, visit),
            None => fail(at, "no name index"),
        };
        if let Err(e) = res {
            visit(Event::Unsupported {
                offset: e.offset,
                what: format!(
                    "dense attribute storage that could not be read ({})",
                    e.reason
                ),
            });
        }
    }

    /// Dense attributes: every record of the name index (a version 2 B-tree, read when
    /// its root is a leaf) holds a fractal heap ID; each names an attribute message.
    fn dense(&mut self, heap_at: u64, index_at: u64, visit: &mut dyn FnMut(Event)) -> H5Result<()> {
        let heap = self.fractal_heap(heap_at)?;
        let bt = self.read_at(index_at, (16 + self.o + self.l) as u64)?;
        if !bt.starts_with(b"BTHD") {
            return fail(index_at, "name index without BTHD");
        }
        let record = uint(&bt, 10, 2).unwrap_or(0) as usize;
        let depth = uint(&bt, 12, 2).unwrap_or(0);
        let root = self.address(&bt, 16);
        let count = uint(&bt, 16 + self.o, 2).unwrap_or(0) as usize;
        let Some(root) = root.filter(|_| count > 0) else {
            return Ok(());
        };
        if depth != 0 {
            return fail(
                index_at,
                format!("name index of depth {depth} (only leaf roots are read)"),
            );
        }
        if record < heap.id_len {
            return fail(index_at, "name index records shorter than heap IDs");
        }
        let leaf = self.read_at(root, (6 + record * count) as u64)?;
        if !leaf.starts_with(b"BTLF") {
            return fail(root, "name index leaf without BTLF");
        }
        for k in 0..count {
            let Some(id) = leaf.get(6 + k * record..6 + k * record + heap.id_len) else {
                break;
            };
            let (addr, end) = self.heap_object_at(&heap, id, root)?;
            let message = self.read_at(addr, end - addr)?;
            self.attribute(&message, addr, visit)?;
        }
        Ok(())
    }

    fn fractal_heap(&mut self, at: u64) -> H5Result<Heap> {
        let (o, l) = (self.o, self.l);
        let h = self.read_at(at, (26 + 3 * o + 12 * l) as u64)?;
        if !h.starts_with(b"FRHP") {
            return fail(at, "fractal heap without FRHP");
        }
        if uint(&h, 7, 2) != Some(0) {
            return fail(at, "filtered (compressed) fractal heap");
        }
        let width_at = 14 + l + o + l + o + 8 * l;
        let field = |off: usize, size: usize| uint(&h, width_at + off, size).unwrap_or(0);
        let start = field(2, l);
        let heap_bits = field(2 + 2 * l, 2);
        let heap = Heap {
            id_len: uint(&h, 5, 2).unwrap_or(0) as usize,
            width: field(0, 2),
            start,
            max_direct: field(2 + l, l),
            offset_len: heap_bits.div_ceil(8) as usize,
            root: self.address(&h, width_at + 6 + 2 * l),
            rows: field(6 + 2 * l + o, 2),
        };
        if heap.width == 0 || heap.start == 0 || heap.offset_len > 8 {
            return fail(at, "implausible fractal heap geometry");
        }
        Ok(heap)
    }

    /// Where a managed object starts, and where its direct block ends.
    fn heap_object_at(&mut self, heap: &Heap, id: &[u8], near: u64) -> H5Result<(u64, u64)> {
        let kind = id.first().map(|b| (b >> 4) & 3);
        if kind != Some(0) {
            return fail(near, "huge or tiny heap object");
        }
        let offset = uint(id, 1, heap.offset_len).unwrap_or(0);
        let Some(root) = heap.root else {
            return fail(near, "fractal heap without a root block");
        };
        // A root direct block may have grown past the starting size; the file's end
        // bounds it then.
        let (block, block_offset, size) = if heap.rows == 0 {
            (
                root,
                0,
                heap.max_direct
                    .max(heap.start)
                    .min(self.len.saturating_sub(root)),
            )
        } else {
            self.direct_block(heap, root, offset)?
        };
        let within = offset.checked_sub(block_offset).filter(|w| *w < size);
        match within {
            Some(w) => Ok((block + w, block + size)),
            None => fail(block, format!("heap offset {offset} outside its block")),
        }
    }

    /// Finds the direct block holding heap `offset` in a root indirect block.
    fn direct_block(&mut self, heap: &Heap, root: u64, offset: u64) -> H5Result<(u64, u64, u64)> {
        let head = 5 + self.o + heap.offset_len;
        let (mut row_offset, mut size) = (0u64, heap.start);
        for row in 0..heap.rows.min(64) {
            if row >= 2 {
                size = size.saturating_mul(2);
            }
            if size > heap.max_direct {
                break;
            }
            let span = size.saturating_mul(heap.width);
            if offset < row_offset.saturating_add(span) {
                let col = (offset - row_offset) / size;
                let entry = head as u64 + (row * heap.width + col) * self.o as u64;
                let ib = self.read_at(root, entry + self.o as u64)?;
                if !ib.starts_with(b"FHIB") {
                    return fail(root, "indirect block without FHIB");
                }
                let Some(addr) = self.address(&ib, entry as usize) else {
                    return fail(root, "heap object in an unallocated block");
                };
                return Ok((addr, row_offset + col * size, size));
            }
            row_offset = row_offset.saturating_add(span);
        }
        fail(root, "heap object in a nested indirect block")
    }

    fn attribute(&mut self, d: &[u8], at: u64, visit: &mut dyn FnMut(Event)) -> H5Result<()> {
        let version = *d.first().unwrap_or(&0);
        let flags = *d.get(1).unwrap_or(&0);
        let sizes = (uint(d, 2, 2), uint(d, 4, 2), uint(d, 6, 2));
        let (Some(name_len), Some(dt_len), Some(ds_len)) = sizes else {
            return fail(at, "truncated attribute message");
        };
        let pad = |n: u64| if version == 1 { n.div_ceil(8) * 8 } else { n };
        let name_at: u64 = match version {
            1 | 2 => 8,
            3 => 9,
            v => return fail(at, format!("unsupported attribute message version {v}")),
        };
        let dt_at = name_at + pad(name_len);
        let ds_at = dt_at + pad(dt_len);
        let data_at = ds_at + pad(ds_len);
        let slice = |from: u64, len: u64| d.get(from as usize..(from + len) as usize);
        let (Some(name), Some(dt), Some(ds)) = (
            slice(name_at, name_len),
            slice(dt_at, dt_len),
            slice(ds_at, ds_len),
        ) else {
            return fail(at, "attribute message shorter than its fields");
        };
        let name = String::from_utf8_lossy(name)
            .trim_end_matches('\0')
            .to_owned();
        if flags & 0x03 != 0 {
            visit(Event::Unsupported {
                offset: at,
                what: format!("attribute {name:?} with a shared datatype or dataspace"),
            });
            return Ok(());
        }
        let data = d.get(data_at as usize..).unwrap_or_default();
        let count = elements(ds, self.l).unwrap_or(0).min(4);
        match (dt.first().map(|b| b & 0x0f), uint(dt, 4, 4)) {
            (Some(3), Some(size)) => {
                for k in 0..count {
                    let Some(v) = slice_n(data, k * size, size) else {
                        break;
                    };
                    let value = v.iter().copied().take_while(|b| *b != 0).collect();
                    let offset = at + data_at + k * size;
                    visit(Event::Attribute {
                        name: name.clone(),
                        value,
                        offset,
                    });
                }
            }
            (Some(9), _) if dt.get(1).is_some_and(|b| b & 0x0f == 1) => {
                let size = (8 + self.o) as u64;
                for k in 0..count {
                    let Some(v) = slice_n(data, k * size, size) else {
                        break;
                    };
                    let Some(heap) = self.address(v, 4) else {
                        continue;
                    };
                    let index = uint(v, 4 + self.o, 4).unwrap_or(0);
                    let value = self.heap_object(heap, index)?;
                    visit(Event::Attribute {
                        name: name.clone(),
                        value,
                        offset: heap,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Finds object `index` in the global heap collection at `at`.
    fn heap_object(&mut self, at: u64, index: u64) -> H5Result<Vec<u8>> {
        let head = self.read_at(at, 8 + self.l as u64)?;
        if !head.starts_with(b"GCOL") {
            return fail(at, "global heap collection without GCOL");
        }
        let size = uint(&head, 8, self.l).unwrap_or(0);
        let end = at.saturating_add(size).min(self.len);
        let mut pos = at + 8 + self.l as u64;
        let obj_head = 8 + self.l as u64;
        for _ in 0..self.limits.hdf5_heap_objects_max {
            if pos + obj_head > end {
                break;
            }
            let h = self.read_at(pos, obj_head)?;
            let id = uint(&h, 0, 2).unwrap_or(0);
            let len = uint(&h, 8, self.l).unwrap_or(0);
            if id == 0 {
                break;
            }
            if id == index {
                let keep = len
                    .min(self.limits.header_bytes_max)
                    .min(end.saturating_sub(pos + obj_head));
                return self.read_at(pos + obj_head, keep);
            }
            let Some(next) = len
                .div_ceil(8)
                .checked_mul(8)
                .and_then(|n| (pos + obj_head).checked_add(n))
            else {
                break;
            };
            pos = next;
        }
        fail(at, format!("global heap object {index} not found"))
    }
}

/// The fractal heap geometry needed to find managed objects.
struct Heap {
    id_len: usize,
    width: u64,
    start: u64,
    max_direct: u64,
    /// Bytes of a heap offset in a heap ID.
    offset_len: usize,
    root: Option<u64>,
    /// Rows in the root indirect block; 0 when the root is a direct block.
    rows: u64,
}

fn slice_n(data: &[u8], from: u64, len: u64) -> Option<&[u8]> {
    let from = usize::try_from(from).ok()?;
    data.get(from..from.checked_add(usize::try_from(len).ok()?)?)
}

/// Elements in a dataspace: 1 for a scalar, 0 for null, the product of dimensions.
fn elements(ds: &[u8], l: usize) -> Option<u64> {
    let version = *ds.first()?;
    let rank = usize::from(*ds.get(1)?);
    let (dims_at, kind) = match version {
        1 => (8, if rank == 0 { 0 } else { 1 }),
        2 => (4, *ds.get(3)?),
        _ => return None,
    };
    match kind {
        0 => Some(1),
        1 => (0..rank).try_fold(1u64, |acc, k| {
            acc.checked_mul(uint(ds, dims_at + l * k, l)?)
        }),
        _ => Some(0),
    }
}
