/*
 * NAME
 *	tn_id - checks of identifiers from outside
 */
#include <ctype.h>
#include <string.h>

#include <tn/tn_id.h>

bool tn_uuid_valid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}
