/*
 * xattr_shim.c: the few libext2fs calls mkimg needs to set and read back
 * extended attributes in an unmounted ext4 image, behind a narrow API of
 * plain C types for src/filesystems/ext4/libext2fs.rs.
 *
 * Why C and not Rust declarations of libext2fs: the clock lives in the
 * field `now` of `struct struct_ext2_filsys`, a large struct whose layout is
 * only type-checked when compiled against the real <ext2fs/ext2fs.h>; and
 * no maintained crate binds libext2fs. Here the compiler checks every call
 * and field against the installed headers (libext2fs-dev 1.47.2).
 *
 * Every function returns a libext2fs/com_err error code (0 = success);
 * mkimg_ext2_message() turns one into text. Paths are absolute paths inside
 * the image, resolved from its root without following a final symlink, as
 * debugfs resolved them. No function reads input as a command language.
 */

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <et/com_err.h>
#include <ext2fs/ext2_err.h>
#include <ext2fs/ext2fs.h>

static pthread_once_t error_table_once = PTHREAD_ONCE_INIT;

static void register_error_table(void)
{
	initialize_ext2_error_table();
}

/*
 * Opens `image` (read-write if `writable`) with the clock fixed at
 * `epoch`: libext2fs stamps the superblock (s_wtime) and any inode time it
 * touches from fs->now instead of the wall clock when USE_FAKE_TIME is set
 * (0 included). Bitmaps are loaded so that an xattr block can be allocated.
 */
long mkimg_ext2_open(const char *image, int64_t epoch, int writable,
		     ext2_filsys *out)
{
	ext2_filsys fs = NULL;
	errcode_t err;

	pthread_once(&error_table_once, register_error_table);
	*out = NULL;
	err = ext2fs_open2(image, NULL,
			   (writable ? EXT2_FLAG_RW : 0) | EXT2_FLAG_64BITS, 0,
			   0, unix_io_manager, &fs);
	if (err)
		return err;
	fs->now = (time_t) epoch;
	fs->flags2 |= EXT2_FLAG2_USE_FAKE_TIME;
	err = ext2fs_read_bitmaps(fs);
	if (err) {
		ext2fs_free(fs);
		return err;
	}
	*out = fs;
	return 0;
}

/* Writes everything back and frees `fs` (also on error). */
long mkimg_ext2_close(ext2_filsys fs)
{
	return ext2fs_close_free(&fs);
}

static errcode_t lookup(ext2_filsys fs, const char *path, ext2_ino_t *ino)
{
	return ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, ino);
}

/*
 * Sets xattr `name` of the inode at `path` to `len` bytes of `value`.
 * POSIX ACLs (system.posix_acl_*) come in the Linux xattr format; libext2fs
 * stores them in the ext4 format.
 */
long mkimg_ext2_xattr_set(ext2_filsys fs, const char *path, const char *name,
			  const void *value, size_t len)
{
	struct ext2_xattr_handle *h = NULL;
	ext2_ino_t ino;
	errcode_t err, close_err;

	err = lookup(fs, path, &ino);
	if (err)
		return err;
	err = ext2fs_xattrs_open(fs, ino, &h);
	if (err)
		return err;
	err = ext2fs_xattrs_read(h);
	if (!err)
		err = ext2fs_xattr_set(h, name, value, len);
	close_err = ext2fs_xattrs_close(&h);
	return err ? err : close_err;
}

/*
 * Reads xattr `name` of the inode at `path` into a buffer the caller
 * frees with mkimg_ext2_free(). ACLs come back in the Linux xattr format.
 */
long mkimg_ext2_xattr_get(ext2_filsys fs, const char *path, const char *name,
			  void **value, size_t *len)
{
	struct ext2_xattr_handle *h = NULL;
	ext2_ino_t ino;
	errcode_t err, close_err;

	*value = NULL;
	*len = 0;
	err = lookup(fs, path, &ino);
	if (err)
		return err;
	err = ext2fs_xattrs_open(fs, ino, &h);
	if (err)
		return err;
	err = ext2fs_xattrs_read(h);
	if (!err)
		err = ext2fs_xattr_get(h, name, value, len);
	close_err = ext2fs_xattrs_close(&h);
	if (!err && close_err) {
		ext2fs_free_mem(value);
		*len = 0;
	}
	return err ? err : close_err;
}

void mkimg_ext2_free(void *value)
{
	/* ext2fs_free_mem takes a pointer to the pointer. */
	ext2fs_free_mem(&value);
}

/*
 * Copies the text of a libext2fs or errno code into `out` (`cap` bytes,
 * NUL-terminated, truncated if need be). error_message() formats unknown
 * codes into a static buffer, so calls are serialised here.
 */
void mkimg_ext2_message(long err, char *out, size_t cap)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

	pthread_once(&error_table_once, register_error_table);
	if (cap == 0)
		return;
	pthread_mutex_lock(&lock);
	snprintf(out, cap, "%s", error_message(err));
	pthread_mutex_unlock(&lock);
}
