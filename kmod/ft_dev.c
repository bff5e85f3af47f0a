// SPDX-License-Identifier: GPL-2.0
/*
 * ft_dev.c - /dev/kvm_ft and session fds.
 *
 * /dev/kvm_ft takes three ioctls (uapi/linux/kvm_ft.h): GET_INFO, ATTACH
 * (by VM fd, or by pid with CAP_SYS_ADMIN) and OPEN (a session on an
 * attachment made over netlink, CAP_SYS_ADMIN). ATTACH and OPEN return a
 * session fd: mmap() it to map the rings, poll() it to wait for records.
 * A session made by ATTACH owns its attachment and detaches it on close;
 * it (or a CAP_SYS_ADMIN caller) may also APPEND VMM records to the rings.
 *
 * Every ioctl argument is copied in whole and checked before anything
 * happens: unknown command -ENOTTY (the size is part of the command
 * number, so a wrong size is an unknown command), non-zero reserved field
 * or bad geometry -EINVAL, too large -E2BIG, missing privilege -EPERM,
 * a fd that is not a KVM VM -EBADF/-EINVAL.
 */
#include <linux/anon_inodes.h>
#include <linux/capability.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kvm_host.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/pid.h>
#include <linux/uaccess.h>
#include <linux/mm.h>
#include "ft_internal.h"

struct ft_session {
	struct ft_vm *vm;
	bool owner;	/* detach on close */
};

static bool ft_zero(const void *p, size_t len)
{
	return !memchr_inv(p, 0, len);
}

/* Defaults and limits for ring geometry; shared with netlink. */
int ft_validate_geometry(u32 *nr_vcpus, u32 *ring_bytes)
{
	if (!*nr_vcpus)
		*nr_vcpus = 1;
	if (!*ring_bytes)
		*ring_bytes = KVM_FT_RING_DEF_DATA;
	if (*nr_vcpus > FT_MAX_VCPUS)
		return -E2BIG;
	if (*ring_bytes < KVM_FT_RING_MIN_DATA ||
	    *ring_bytes > KVM_FT_RING_MAX_DATA ||
	    !is_power_of_2(*ring_bytes) || *ring_bytes % PAGE_SIZE)
		return -EINVAL;
	if ((u64)*nr_vcpus * (*ring_bytes + 2 * PAGE_SIZE) > FT_MAX_AREA)
		return -E2BIG;
	return 0;
}

static int ft_session_release(struct inode *inode, struct file *file)
{
	struct ft_session *s = file->private_data;

	if (s->owner)
		ft_vm_detach(s->vm, "session closed");
	ft_vm_put(s->vm);
	kfree(s);
	return 0;
}

static __poll_t ft_session_poll(struct file *file, poll_table *pt)
{
	struct ft_session *s = file->private_data;
	struct ft_vm *vm = s->vm;
	__poll_t mask = 0;
	u32 i;

	poll_wait(file, &vm->wq, pt);
	for (i = 0; i < vm->nr_vcpus; i++)
		if (ft_ring_readable(&vm->rings[i])) {
			mask |= EPOLLIN | EPOLLRDNORM;
			break;
		}
	if (!READ_ONCE(vm->listed))
		mask |= EPOLLHUP;
	return mask;
}

static int ft_session_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct ft_session *s = file->private_data;

	return ft_rings_mmap(s->vm, vma);
}

/*
 * KVM_FT_APPEND: the whole request and record are copied in and checked
 * before the ring is touched, so a fault never happens with interrupts
 * off and a malformed request writes nothing.
 */
static long ft_session_append(struct ft_session *s, void __user *uarg)
{
	struct ft_vm *vm = s->vm;
	struct kvm_ft_append a;
	struct kvm_ft_rec_hdr *rec;
	long ret;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (!ft_zero(a.reserved, sizeof(a.reserved)))
		return -EINVAL;
	if (!s->owner && !capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (a.vcpu >= vm->nr_vcpus)
		return -EINVAL;
	if (a.len > KVM_FT_APPEND_MAX || a.len > vm->ring_bytes / 2)
		return -E2BIG;
	if (a.len < sizeof(*rec) || a.len % 8)
		return -EINVAL;
	if (!READ_ONCE(vm->listed))
		return -ENODEV;
	rec = kvmalloc(a.len, GFP_KERNEL);
	if (!rec)
		return -ENOMEM;
	ret = -EFAULT;
	if (copy_from_user(rec, u64_to_user_ptr(a.rec), a.len))
		goto out;
	ret = -EINVAL;
	if (rec->len != a.len || rec->reserved ||
	    rec->type < KVM_FT_REC_VMM_FIRST || rec->type >= KVM_FT_REC_CTRL_FIRST)
		goto out;
	ret = ft_ring_append(vm, &vm->rings[a.vcpu], rec, a.len);
out:
	kvfree(rec);
	return ret;
}

static long ft_session_ioctl(struct file *file, unsigned int cmd,
			     unsigned long arg)
{
	struct ft_session *s = file->private_data;
	struct ft_vm *vm = s->vm;
	struct kvm_ft_session_info si = {};

	if (cmd == KVM_FT_APPEND)
		return ft_session_append(s, (void __user *)arg);
	if (cmd != KVM_FT_SESSION_INFO)
		return -ENOTTY;
	si.id = vm->id;
	si.nr_vcpus = vm->nr_vcpus;
	si.ring_bytes = vm->ring_bytes;
	si.ring_stride = vm->stride;
	si.pid = vm->pid;
	si.bound = READ_ONCE(vm->kvm) != NULL;
	if (copy_to_user((void __user *)arg, &si, sizeof(si)))
		return -EFAULT;
	return 0;
}

static const struct file_operations ft_session_fops = {
	.owner = THIS_MODULE,
	.release = ft_session_release,
	.poll = ft_session_poll,
	.mmap = ft_session_mmap,
	.unlocked_ioctl = ft_session_ioctl,
	.llseek = noop_llseek,
};

/* Install a session fd on @vm, consuming the caller's reference. */
static int ft_session_fd(struct ft_vm *vm, bool owner)
{
	struct ft_session *s;
	int fd;

	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s) {
		fd = -ENOMEM;
		goto err;
	}
	s->vm = vm;
	s->owner = owner;
	fd = anon_inode_getfd("kvm_ft-session", &ft_session_fops, s,
			      O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	kfree(s);
err:
	if (owner)
		ft_vm_detach(vm, "no session");
	ft_vm_put(vm);
	return fd;
}

/*
 * True if @file is a KVM VM, as kvm.ko's own file_is_kvm() says. Looked up
 * at run time: without kvm.ko loaded, no file is a KVM VM.
 */
static bool ft_is_kvm_vm(struct file *file)
{
	bool (*is_kvm)(struct file *file) = symbol_get(file_is_kvm);
	bool ret;

	if (!is_kvm)
		return false;
	ret = is_kvm(file);
	symbol_put(file_is_kvm);
	return ret;
}

/* The struct kvm behind a KVM VM fd, with a reference taken; or ERR_PTR. */
static struct kvm *ft_kvm_from_fd(int fd)
{
	struct fd f = fdget(fd);
	struct kvm *kvm = ERR_PTR(-EINVAL);

	if (!f.file)
		return ERR_PTR(-EBADF);
	if (ft_is_kvm_vm(f.file)) {
		kvm = f.file->private_data;
		/* The open file holds a reference, so this cannot fail. */
		if (!ft_kvm_get(kvm))
			kvm = ERR_PTR(-EINVAL);
	}
	fdput(f);
	return kvm;
}

static long ft_ioctl_attach(void __user *uarg)
{
	struct kvm_ft_attach a;
	struct kvm *kvm = NULL;
	struct ft_vm *vm;
	pid_t pid;
	int err;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (!ft_zero(a.reserved, sizeof(a.reserved)))
		return -EINVAL;
	err = ft_validate_geometry(&a.nr_vcpus, &a.ring_bytes);
	if (err)
		return err;
	if (a.vm_fd >= 0) {
		if (a.pid)
			return -EINVAL;
		kvm = ft_kvm_from_fd(a.vm_fd);
		if (IS_ERR(kvm))
			return PTR_ERR(kvm);
		pid = current->tgid;
	} else {
		if (a.vm_fd != -1 || !a.pid || a.pid > PID_MAX_LIMIT)
			return -EINVAL;
		if (!capable(CAP_SYS_ADMIN))
			return -EPERM;
		if (!ft_pid_exists(a.pid))
			return -ESRCH;
		pid = a.pid;
	}
	vm = ft_vm_create(pid, kvm, a.nr_vcpus, a.ring_bytes, false);
	if (IS_ERR(vm)) {
		if (kvm)
			ft_kvm_put(kvm);
		return PTR_ERR(vm);
	}
	return ft_session_fd(vm, true);
}

static long ft_ioctl_open(void __user *uarg)
{
	struct kvm_ft_open o;
	struct ft_vm *vm;

	if (copy_from_user(&o, uarg, sizeof(o)))
		return -EFAULT;
	if (o.reserved0 || !ft_zero(o.reserved, sizeof(o.reserved)))
		return -EINVAL;
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	vm = ft_vm_get_by_id(o.id);
	if (!vm)
		return -ENOENT;
	return ft_session_fd(vm, false);
}

static long ft_dev_ioctl(struct file *file, unsigned int cmd,
			 unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	struct kvm_ft_info info = {
		.abi_version = KVM_FT_ABI_VERSION,
		.max_vcpus = FT_MAX_VCPUS,
		.page_size = PAGE_SIZE,
	};

	switch (cmd) {
	case KVM_FT_GET_INFO:
		info.features = READ_ONCE(ft_features);
		return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
	case KVM_FT_ATTACH:
		return ft_ioctl_attach(uarg);
	case KVM_FT_OPEN:
		return ft_ioctl_open(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations ft_dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = ft_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice ft_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kvm_ft",
	.fops = &ft_dev_fops,
	.mode = 0600,
};

int ft_dev_init(void)
{
	return misc_register(&ft_miscdev);
}

void ft_dev_exit(void)
{
	misc_deregister(&ft_miscdev);
}
