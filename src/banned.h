/*
 * banned.h - functions parley does not call.
 *
 * Each of these either cannot be told how big its destination is or keeps
 * hidden state between calls.  Use buf_*() or snprintf() instead.  Included
 * last by every .c file in src/ (after the system headers), as git does.
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
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef gets
#define gets(x) BANNED(gets)

#endif
