/*
 * wire.c - what hozen reads and writes on /dev/fuse itself.
 *
 * libfuse 3.14 (Debian 12's) cannot negotiate FUSE_HANDLE_KILLPRIV_V2.
 * Without it the kernel asks for security.capability before every write
 * (a round trip per write(2) that costs as much as the write itself),
 * because it must find out whether a write has to drop privileges.  With
 * it the kernel marks the superblock SB_NOSEC and checks each inode once,
 * and leaves the rest to the filesystem: when a process without
 * CAP_FSETID writes (FUSE_WRITE_KILL_SUIDGID), truncates
 * (FATTR_KILL_SUIDGID) or opens with O_TRUNC (FUSE_OPEN_KILL_SUIDGID),
 * the filesystem drops setuid, and setgid if group execute is set.  A
 * security.capability is still found and removed by the kernel (its
 * check runs until it sees an inode without one), through removexattr.
 *
 * So hozen reads requests and writes replies through libfuse's custom
 * I/O: the INIT reply gets FUSE_HANDLE_KILLPRIV_V2 when the kernel offers
 * it, and each request's kill flag is kept for the worker thread that
 * read it (libfuse's multi-threaded loop hands a request to the thread
 * that read it, and splice reads are off: every request passes here).
 * The handlers ask hz_wire_kill() and do what the kernel no longer does,
 * recorded like any change of mode (ops.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fsint.h"

/* The kill flag of the request this thread read last. */
static _Thread_local int wire_kill;

int hz_wire_kill(void)
{
	return wire_kill;
}

/* Whether bit is set in the u32 at off of a request's n argument bytes. */
static int arg_bit(const char *arg, ssize_t n, size_t need, size_t off,
		   uint32_t bit)
{
	uint32_t v;

	if (n < (ssize_t)need)
		return 0;
	memcpy(&v, arg + off, sizeof(v));
	return (v & bit) != 0;
}

#define ARG_BIT(type, field, bit)                                              \
	arg_bit(arg, n, sizeof(struct type), offsetof(struct type, field), bit)

static ssize_t wire_read(int fd, void *buf, size_t len, void *userdata)
{
	struct hz_fs *fs = userdata;
	struct fuse_in_header in;
	const char *arg;
	ssize_t got, n;

	got = read(fd, buf, len);
	wire_kill = 0;
	if (got < (ssize_t)sizeof(in))
		return got;
	memcpy(&in, buf, sizeof(in));
	arg = (const char *)buf + sizeof(in);
	n = got - (ssize_t)sizeof(in);
	switch (in.opcode) {
	case FUSE_INIT:
		if (arg_bit(arg, n, offsetof(struct fuse_init_in, flags) + 4,
			    offsetof(struct fuse_init_in, flags),
			    FUSE_HANDLE_KILLPRIV_V2)) {
			fs->init_unique = in.unique;
			fs->init_offers_v2 = 1;
		}
		break;
	case FUSE_WRITE:
		wire_kill = ARG_BIT(fuse_write_in, write_flags,
				    FUSE_WRITE_KILL_SUIDGID);
		break;
	case FUSE_SETATTR:
		wire_kill = ARG_BIT(fuse_setattr_in, valid, FATTR_KILL_SUIDGID);
		break;
	case FUSE_OPEN:
		wire_kill = ARG_BIT(fuse_open_in, open_flags,
				    FUSE_OPEN_KILL_SUIDGID);
		break;
	case FUSE_CREATE:
		wire_kill = ARG_BIT(fuse_create_in, open_flags,
				    FUSE_OPEN_KILL_SUIDGID);
		break;
	default:
		break;
	}
	return got;
}

static ssize_t wire_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct hz_fs *fs = userdata;
	struct fuse_out_header out;
	struct fuse_init_out init;
	struct iovec v[2];

	if (!fs->init_offers_v2 || fs->killpriv_v2 || count != 2 ||
	    iov[0].iov_len != sizeof(out) ||
	    iov[1].iov_len <
		    offsetof(struct fuse_init_out, flags) + sizeof(uint32_t) ||
	    iov[1].iov_len > sizeof(init))
		return writev(fd, iov, count);
	memcpy(&out, iov[0].iov_base, sizeof(out));
	if (out.unique != fs->init_unique || out.error != 0)
		return writev(fd, iov, count);
	/* The INIT reply: the kernel offered it, take it. */
	memcpy(&init, iov[1].iov_base, iov[1].iov_len);
	init.flags |= FUSE_HANDLE_KILLPRIV_V2;
	v[0] = iov[0];
	v[1].iov_base = &init;
	v[1].iov_len = iov[1].iov_len;
	fs->killpriv_v2 = 1;
	return writev(fd, v, 2);
}

static ssize_t wire_splice_send(int fdin, off_t *offin, int fdout,
				off_t *offout, size_t len, unsigned int flags,
				void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

int hz_wire_attach(struct hz_fs *fs)
{
	static const struct fuse_custom_io io = {
		.read = wire_read,
		.writev = wire_writev,
		/* Replies to reads still move pages; requests are read. */
		.splice_send = wire_splice_send,
		.splice_receive = NULL,
	};
	int rc;

	rc = fuse_session_custom_io(fs->se, &io, fuse_session_fd(fs->se));
	return rc < 0 ? hc_error_set(HC_ESYS,
				     "cannot set the FUSE session's "
				     "I/O (%s)",
				     strerror(-rc))
		      : 0;
}
