// loader.cc - ELF64 and flat image loading (loader.h).
#include "vm/loader.h"

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fmt/format.h>

#include "base/unique_fd.h"
#include "ftlog/file.h"
#include "vm/vm.h"

namespace kvmft::vmm {

namespace {
Status CheckRange(uint64_t gpa, uint64_t len, uint64_t mem_bytes, const std::string &what)
{
	if (gpa < kImageMin || gpa + len < gpa || gpa + len > mem_bytes)
		return Status::Error(EINVAL, fmt::format(
			"{}: [{:#x}, {:#x}) is outside loadable RAM [{:#x}, {:#x})",
			what, gpa, gpa + len, kImageMin, mem_bytes));
	return Status::Ok();
}
} // namespace

Status ReadImage(const std::string &path, Image *out)
{
	UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
	if (!fd.valid())
		return Status::Errno("open image " + path);
	std::vector<uint8_t> bytes;
	uint8_t buf[65536];
	for (;;) {
		ssize_t r = ::read(fd.get(), buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return Status::Errno("read image " + path);
		if (r == 0)
			break;
		bytes.insert(bytes.end(), buf, buf + r);
	}
	if (bytes.empty())
		return Status::Error(EINVAL, "image " + path + " is empty");
	out->hash = Fnv1a64(bytes.data(), bytes.size());
	out->bytes = std::move(bytes);
	return Status::Ok();
}

Status LoadElf(const Image &img, uint8_t *mem, uint64_t mem_bytes, uint64_t *entry)
{
	const auto &b = img.bytes;
	Elf64_Ehdr eh;
	if (b.size() < sizeof(eh))
		return Status::Error(EINVAL, "ELF: file shorter than an ELF header");
	memcpy(&eh, b.data(), sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
		return Status::Error(EINVAL, "ELF: bad magic (use --flat for a raw binary)");
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC)
		return Status::Error(EINVAL, "ELF: not a static little-endian x86-64 executable");
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > b.size() ||
	    static_cast<uint64_t>(eh.e_phnum) * sizeof(Elf64_Phdr) > b.size() - eh.e_phoff)
		return Status::Error(EINVAL, "ELF: program headers outside the file");
	int loaded = 0;
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, &b[eh.e_phoff + i * sizeof(ph)], sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		std::string what = fmt::format("ELF: PT_LOAD #{}", i);
		if (ph.p_filesz > ph.p_memsz)
			return Status::Error(EINVAL, what + ": p_filesz > p_memsz");
		if (ph.p_offset > b.size() || ph.p_filesz > b.size() - ph.p_offset)
			return Status::Error(EINVAL, what + ": data outside the file");
		Status s = CheckRange(ph.p_paddr, ph.p_memsz, mem_bytes, what);
		if (!s.ok())
			return s;
		memcpy(mem + ph.p_paddr, &b[ph.p_offset], ph.p_filesz);
		memset(mem + ph.p_paddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		loaded++;
	}
	if (!loaded)
		return Status::Error(EINVAL, "ELF: no loadable segment");
	if (eh.e_entry < kImageMin || eh.e_entry >= mem_bytes)
		return Status::Error(EINVAL, fmt::format("ELF: entry {:#x} outside RAM", eh.e_entry));
	*entry = eh.e_entry;
	return Status::Ok();
}

Status LoadFlat(const Image &img, uint8_t *mem, uint64_t mem_bytes, uint64_t *entry)
{
	Status s = CheckRange(kFlatBase, img.bytes.size(), mem_bytes, "flat image");
	if (!s.ok())
		return s;
	memcpy(mem + kFlatBase, img.bytes.data(), img.bytes.size());
	*entry = kFlatBase;
	return Status::Ok();
}

Status BootImage(Vm &vm, const std::string &path, bool flat, uint64_t *image_hash)
{
	Image img;
	Status s = ReadImage(path, &img);
	if (!s.ok())
		return s;
	*image_hash = img.hash;
	uint64_t entry;
	s = flat ? LoadFlat(img, vm.mem(), vm.mem_bytes(), &entry)
		 : LoadElf(img, vm.mem(), vm.mem_bytes(), &entry);
	if (!s.ok())
		return s.Wrap(path);
	return vm.SetEntryState(entry);
}

} // namespace kvmft::vmm
