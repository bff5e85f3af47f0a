// intercept.cc - FUSE passthrough with update records (intercept.h).
#define FUSE_USE_VERSION 312
#include "intercept.h"

#include <dirent.h>
#include <fcntl.h>
#include <fuse.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>

namespace kvmft::hbd {

using kvmft::Status;

namespace {

Intercept *Self() { return static_cast<Intercept *>(fuse_get_context()->private_data); }

std::string Rel(const char *p)
{
	while (*p == '/')
		p++;
	return *p ? p : ".";
}

int32_t Res(int rc) { return rc < 0 ? -errno : rc; }

// Runs op on the directory and logs the update.
int Logged(Op op, const char *path, uint64_t arg, const std::function<int32_t()> &fn,
	   const char *path2 = "", std::string data = {})
{
	Record r;
	r.op = op;
	r.path = path;
	r.path2 = path2;
	r.arg = arg;
	r.data = std::move(data);
	int32_t rc = Self()->queue()->Update(std::move(r), fn);
	return rc < 0 ? rc : 0;
}

int GetAttr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	int rc = fi ? fstat(static_cast<int>(fi->fh), st)
		    : fstatat(Self()->dirfd(), Rel(path).c_str(), st, AT_SYMLINK_NOFOLLOW);
	return rc < 0 ? -errno : 0;
}

int ReadLink(const char *path, char *buf, size_t size)
{
	ssize_t n = readlinkat(Self()->dirfd(), Rel(path).c_str(), buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

int ReadDir(const char *path, void *buf, fuse_fill_dir_t fill, off_t, struct fuse_file_info *,
	    enum fuse_readdir_flags)
{
	int fd = openat(Self()->dirfd(), Rel(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (struct dirent *e = readdir(d)) {
		struct stat st {};
		st.st_ino = e->d_ino;
		st.st_mode = static_cast<mode_t>(DTTOIF(e->d_type));
		if (fill(buf, e->d_name, &st, 0, static_cast<fuse_fill_dir_flags>(0)))
			break;
	}
	closedir(d);
	return 0;
}

int Open(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(Self()->dirfd(), Rel(path).c_str(),
			(fi->flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	fi->fh = static_cast<uint64_t>(fd);
	if (fi->flags & O_TRUNC) {
		int rc = Logged(Op::kTruncate, path, 0, [fd] { return Res(ftruncate(fd, 0)); });
		if (rc < 0) {
			close(fd);
			return rc;
		}
	}
	return 0;
}

int Create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int fd = -1;
	int rc = Logged(Op::kCreate, path, mode, [&] {
		fd = openat(Self()->dirfd(), Rel(path).c_str(),
			    (fi->flags & ~O_TRUNC) | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
		return Res(fd);
	});
	if (rc < 0)
		return rc;
	fi->fh = static_cast<uint64_t>(fd);
	if (fi->flags & O_TRUNC)
		return Logged(Op::kTruncate, path, 0, [fd] { return Res(ftruncate(fd, 0)); });
	return 0;
}

int Read(const char *, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	ssize_t n = pread(static_cast<int>(fi->fh), buf, size, off);
	return n < 0 ? -errno : static_cast<int>(n);
}

int Write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	int fd = static_cast<int>(fi->fh);
	Record r;
	r.op = Op::kWrite;
	r.path = path;
	r.arg = static_cast<uint64_t>(off);
	r.data.assign(buf, size);
	return Self()->queue()->Update(std::move(r), [&] {
		return Res(static_cast<int>(pwrite(fd, buf, size, off)));
	});
}

int Truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	return Logged(Op::kTruncate, path, static_cast<uint64_t>(size), [&] {
		if (fi)
			return Res(ftruncate(static_cast<int>(fi->fh), size));
		int fd = openat(Self()->dirfd(), Rel(path).c_str(), O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		int rc = Res(ftruncate(fd, size));
		close(fd);
		return rc;
	});
}

int Fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int fd = static_cast<int>(fi->fh);
	return Logged(Op::kFsync, path, 0, [&] { return Res(datasync ? fdatasync(fd) : fsync(fd)); });
}

int Release(const char *, struct fuse_file_info *fi)
{
	close(static_cast<int>(fi->fh));
	return 0;
}

int Unlink(const char *path)
{
	return Logged(Op::kUnlink, path, 0,
		      [&] { return Res(unlinkat(Self()->dirfd(), Rel(path).c_str(), 0)); });
}

int Rmdir(const char *path)
{
	return Logged(Op::kRmdir, path, 0, [&] {
		return Res(unlinkat(Self()->dirfd(), Rel(path).c_str(), AT_REMOVEDIR));
	});
}

int Mkdir(const char *path, mode_t mode)
{
	return Logged(Op::kMkdir, path, mode,
		      [&] { return Res(mkdirat(Self()->dirfd(), Rel(path).c_str(), mode)); });
}

int Rename(const char *from, const char *to, unsigned flags)
{
	return Logged(
		Op::kRename, from, flags,
		[&] {
			return Res(renameat2(Self()->dirfd(), Rel(from).c_str(), Self()->dirfd(),
					     Rel(to).c_str(), flags));
		},
		to);
}

int Symlink(const char *target, const char *link)
{
	return Logged(
		Op::kSymlink, target, 0,
		[&] { return Res(symlinkat(target, Self()->dirfd(), Rel(link).c_str())); }, link);
}

int Link(const char *from, const char *to)
{
	return Logged(
		Op::kLink, from, 0,
		[&] {
			return Res(linkat(Self()->dirfd(), Rel(from).c_str(), Self()->dirfd(),
					  Rel(to).c_str(), 0));
		},
		to);
}

int Chmod(const char *path, mode_t mode, struct fuse_file_info *)
{
	return Logged(Op::kChmod, path, mode,
		      [&] { return Res(fchmodat(Self()->dirfd(), Rel(path).c_str(), mode, 0)); });
}

int Utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	int rc = fi ? futimens(static_cast<int>(fi->fh), tv)
		    : utimensat(Self()->dirfd(), Rel(path).c_str(), tv, AT_SYMLINK_NOFOLLOW);
	return rc < 0 ? -errno : 0;
}

int StatFs(const char *, struct statvfs *st)
{
	return fstatvfs(Self()->dirfd(), st) < 0 ? -errno : 0;
}

void *Init(struct fuse_conn_info *, struct fuse_config *cfg)
{
	cfg->use_ino = 1;
	cfg->attr_timeout = 1;
	cfg->entry_timeout = 1;
	cfg->negative_timeout = 0;
	return fuse_get_context()->private_data;
}

struct fuse_operations Ops()
{
	struct fuse_operations o {};
	o.getattr = GetAttr;
	o.readlink = ReadLink;
	o.mkdir = Mkdir;
	o.unlink = Unlink;
	o.rmdir = Rmdir;
	o.symlink = Symlink;
	o.rename = Rename;
	o.link = Link;
	o.chmod = Chmod;
	o.truncate = Truncate;
	o.open = Open;
	o.read = Read;
	o.write = Write;
	o.statfs = StatFs;
	o.release = Release;
	o.fsync = Fsync;
	o.readdir = ReadDir;
	o.init = Init;
	o.create = Create;
	o.utimens = Utimens;
	return o;
}

} // namespace

Status Intercept::Start(const std::string &dir, UnsafeQueue *q)
{
	dirfd_.reset(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!dirfd_.valid())
		return Status::Errno("open protected directory " + dir);
	q_ = q;
	const char *argv[] = {"fthbd", "-o", "fsname=fthbd,subtype=fthbd,default_permissions"};
	struct fuse_args args = FUSE_ARGS_INIT(3, const_cast<char **>(argv));
	struct fuse_operations ops = Ops();
	fuse_ = fuse_new(&args, &ops, sizeof ops, this);
	fuse_opt_free_args(&args); // fuse_new copied what it keeps
	if (!fuse_)
		return Status::Error(EINVAL, "fuse_new failed for " + dir);
	if (fuse_mount(fuse_, dir.c_str()) != 0) {
		fuse_destroy(fuse_);
		fuse_ = nullptr;
		return Status::Error(EIO, "cannot mount the interception over " + dir +
						  " (is /dev/fuse there and the fuse module loaded?)");
	}
	loop_ = std::thread([f = fuse_] {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(cfg, 0);
		fuse_loop_cfg_set_max_threads(cfg, 16);
		fuse_loop_mt(f, cfg);
		fuse_loop_cfg_destroy(cfg);
	});
	return Status::Ok();
}

void Intercept::Stop()
{
	if (!fuse_)
		return;
	fuse_exit(fuse_);
	fuse_unmount(fuse_);
	if (loop_.joinable())
		loop_.join();
	fuse_destroy(fuse_);
	fuse_ = nullptr;
}

} // namespace kvmft::hbd
