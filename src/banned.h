/*
 * banned.h - functions parley does not call (git's list, plus gets).
 *
 * Each of these either cannot be told how big its destination is, keeps
 * hidden state between calls (strtok, gmtime, localtime, ctime, asctime
 * return or keep static storage), or races (mktemp names a file another
 * process can take first).  Use buf_*() or snprintf() instead of the
 * string functions, clock_format() or gmtime_r() for times, and mkstemp()
 * for temporary files.  Included last by every .c file in src/ (after the
 * system headers), as git does.
 */
#ifndef PARLEY_BANNED_H
#define PARLEY_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BANNED(strncat)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef strtok_r
#define strtok_r(x, y, z) BANNED(strtok_r)

#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)

#undef gmtime
#define gmtime(t) BANNED(gmtime)
#undef localtime
#define localtime(t) BANNED(localtime)
#undef ctime
#define ctime(t) BANNED(ctime)
#undef ctime_r
#define ctime_r(t, buf) BANNED(ctime_r)
#undef asctime
#define asctime(t) BANNED(asctime)
#undef asctime_r
#define asctime_r(t, buf) BANNED(asctime_r)

#undef mktemp
#define mktemp(x) BANNED(mktemp)

#undef gets
#define gets(x) BANNED(gets)

#endif
