/* Scratch directories of the harnesses that need files (fuzz_binlog,
 * fuzz_store): emptied between inputs, removed at exit. */
#ifndef BS_FUZZ_SCRATCH_H
#define BS_FUZZ_SCRATCH_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Remove every file of dir except one named keep (NULL: none); -1 if dir
 * cannot be opened. Subdirectories are left alone. */
static inline int
scratch_empty(const char *dir, const char *keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    char p[8192];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            (keep && !strcmp(e->d_name, keep)))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    return 0;
}

#endif
