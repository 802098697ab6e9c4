#!/bin/sh
# grub-probe and grub-mkrelpath for mkimg's `--grub mkconfig` tree path.
#
# mkimg puts this file over the rootfs's grub-probe, grub2-probe,
# grub-mkrelpath and grub2-mkrelpath in the sandbox's copy of the rootfs
# only, never in the image. Its text is fixed (src/bootloader/probe/
# grub-probe.sh in mkimg); what it answers is data that mkimg writes from
# the build plan into /run/mkimg/grub-probe.answers (see
# src/bootloader/probe.rs), read here, never run. A question the answers
# do not cover is logged to /tmp/mkimg-grub-probe.unanswered, which mkimg
# turns into a build error naming it: the answer is never guessed.

answers=/run/mkimg/grub-probe.answers
unanswered_log=/tmp/mkimg-grub-probe.unanswered
me=${0##*/}
question="$me $*"

unanswered() {
	printf '%s\n' "$question" >> "$unanswered_log"
	printf '%s: error: mkimg'"'"'s build plan does not answer `%s'"'"'\n' "$me" "$question" >&2
	exit 1
}

# lookup KEY: the value of the line "KEY VALUE" (or "KEY" alone: empty).
lookup() {
	while IFS= read -r line; do
		case $line in
		"$1")
			printf '\n'
			return 0
			;;
		"$1 "*)
			printf '%s\n' "${line#"$1 "}"
			return 0
			;;
		esac
	done < "$answers"
	return 1
}

# check_path PATH: sets r to PATH's canonical form; a path that does not
# exist fails as grub-probe fails; one on another filesystem than the
# root's is not answered.
check_path() {
	p=$1
	case $p in
	/*) ;;
	*) p=$PWD/$p ;;
	esac
	if [ ! -e "$p" ]; then
		printf '%s: error: failed to get canonical path of `%s'"'"'.\n' "$me" "$1" >&2
		exit 1
	fi
	command -v realpath > /dev/null || unanswered
	r=$(realpath "$p") || unanswered
	while IFS= read -r line; do
		case $line in
		"elsewhere "*)
			m=${line#elsewhere }
			case $r in
			"$m" | "$m"/*) unanswered ;;
			esac
			;;
		esac
	done < "$answers"
}

probe() {
	target=fs mode=path expect=
	for a do
		if [ -n "$expect" ]; then
			target=$a expect=
			continue
		fi
		case $a in
		--target=*) target=${a#--target=} ;;
		-t | --target) expect=yes ;;
		-t?*) target=${a#-t} ;;
		-d | --device) mode=device ;;
		-*) unanswered ;;
		esac
	done
	[ -z "$expect" ] || unanswered
	count=0
	for a do
		if [ -n "$expect" ]; then
			expect=
			continue
		fi
		case $a in
		-t | --target) expect=yes ;;
		-*) ;;
		*)
			count=$((count + 1))
			if [ "$mode" = device ]; then
				[ "$a" = "$device" ] || unanswered
			else
				check_path "$a"
			fi
			;;
		esac
	done
	[ "$count" = 1 ] || unanswered
	if [ "$mode" = path ] && [ "$target" = device ]; then
		printf '%s\n' "$device"
		exit 0
	fi
	lookup "target $target" || unanswered
}

relpath() {
	[ $# = 1 ] || unanswered
	case $1 in
	-*) unanswered ;;
	esac
	check_path "$1"
	printf '%s\n' "$r"
}

device=$(lookup device) || unanswered
case $me in
grub-probe | grub2-probe) probe "$@" ;;
grub-mkrelpath | grub2-mkrelpath) relpath "$@" ;;
*) unanswered ;;
esac
